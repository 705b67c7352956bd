//! How big the suite runs, from `ABUSE_SCALE`, and the relay settings that go with it.
//!
//! Quick scale (the default) runs inside `cargo test` on a debug build, so its counts are a
//! tenth or so of the real ones and the relay gets short timeouts (2 s to close an idle
//! connection or a stalled viewer, 3 s for a push), which makes recovery a matter of seconds.
//! Full scale uses the real counts and the relay's defaults, as deployed. Every count and
//! duration an attack uses is here, so the two scales can be compared at a glance.

use std::process::{Command, Stdio};
use std::sync::{Once, OnceLock};
use std::time::Duration;

/// Everything that differs between quick and full runs.
#[derive(Debug, Clone)]
pub struct Scale {
    pub full: bool,
    /// Length of the measurement window before and after an attack.
    pub phase: Duration,
    /// From the end of an attack until the relay must serve normally again with threads,
    /// descriptors and memory back near their baseline.
    pub recovery: Duration,
    /// The relay's own timeouts in effect, for waits that depend on them.
    pub request_timeout: Duration,
    pub write_timeout: Duration,
    pub push_timeout: Duration,

    /// Attack 1: connections, one byte on each every `slowloris_every`, for `slowloris_hold`.
    pub slowloris: usize,
    pub slowloris_every: Duration,
    pub slowloris_hold: Duration,
    /// Attack 2: connections that send a request line and go silent, held this long.
    pub silent: usize,
    pub silent_hold: Duration,
    /// Attack 3: viewers that never read and viewers reading about 10 KB/s. The slow ones are
    /// held `viewers_hold`; the stalled ones until the relay has dropped them all, for at most
    /// `stalled_bound` (and at least `viewers_hold`).
    pub stalled: u32,
    pub slow: u32,
    pub viewers_hold: Duration,
    pub stalled_bound: Duration,
    /// Attack 4: connect/close cycles, and viewers that leave in the middle of a frame.
    pub churn: usize,
    pub mid_frame: usize,
    /// Attack 5: pushes cut mid-body, pushes shorter than declared (then silent), and pushes
    /// declaring 100 GB.
    pub cut_pushes: usize,
    pub short_pushes: usize,
    pub absurd_pushes: usize,
    /// Attack 6: how many times each malformed request is sent.
    pub malformed_repeats: usize,
    /// Attack 7: the relay's descriptor limit, connections opened against it, how long they
    /// are held, and how soon the relay must serve again by itself.
    pub fd_limit: u64,
    pub fd_connections: usize,
    pub fd_hold: Duration,
    pub fd_recover: Duration,
    /// Attack 8: connections that pipeline requests and never read, and requests on each.
    pub pipelined_connections: usize,
    pub pipelined_requests: usize,
    /// Attack 9: requests declaring a 1 TiB body, all open at once, spread over every route.
    pub huge_bodies: usize,
    /// Attack 10: HTTP/2 request lines and connection prefaces sent in all.
    pub http2_lines: usize,
    /// Attack 11: how many times each oversized head is sent at once, and heads trickled a
    /// byte a second.
    pub head_floods: usize,
    pub slow_heads: usize,
    /// Attack 12: how many times each smuggling attempt is sent.
    pub smuggling_repeats: usize,
    /// Attack 13: how many times each injection attempt is sent.
    pub injection_repeats: usize,
    /// Attack 14: the relay's `--max-connections` (`None`: its default of 256), and new
    /// connections that ask for something once it is full.
    pub connection_cap: Option<usize>,
    pub over_cap: usize,
    /// Attack 15: the relay's `--memory-budget`, how long the flood lasts, how many new ids it
    /// pushes to, and over how many connections at once.
    /// `FLOOD_BUDGET_MIB` overrides the budget (8 for a 64 MB router's).
    pub flood_budget: usize,
    pub flood_for: Duration,
    pub flood_ids: usize,
    pub flood_connections: usize,
}

/// The relay's default `--request-timeout`, in effect with [`Scale::patient_relay_args`].
pub const PATIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The timeouts the suite asks for at quick scale.
const QUICK_TIMEOUTS: [(&str, &str); 3] = [
    ("--request-timeout", "2s"),
    ("--write-timeout", "2s"),
    ("--push-timeout", "3s"),
];

impl Scale {
    pub fn from_env() -> Scale {
        raise_own_descriptor_limit();
        let full = match std::env::var("ABUSE_SCALE") {
            Ok(value) if value == "full" => true,
            Ok(value) if value.is_empty() || value == "quick" => false,
            Ok(other) => panic!("ABUSE_SCALE={other:?}: expected `full`, `quick` or unset"),
            Err(_) => false,
        };
        let secs = Duration::from_secs;
        let ms = Duration::from_millis;
        let mut scale = if full {
            Scale {
                full,
                phase: secs(5),
                recovery: secs(60),
                request_timeout: secs(10),
                write_timeout: secs(10),
                push_timeout: secs(60),
                slowloris: 500,
                slowloris_every: secs(2),
                slowloris_hold: secs(30),
                silent: 200,
                silent_hold: secs(20),
                stalled: 50,
                slow: 20,
                viewers_hold: secs(30),
                stalled_bound: secs(90),
                churn: 10_000,
                mid_frame: 2_000,
                cut_pushes: 50,
                short_pushes: 20,
                absurd_pushes: 5,
                malformed_repeats: 20,
                fd_limit: 256,
                fd_connections: 400,
                fd_hold: secs(5),
                fd_recover: secs(30),
                pipelined_connections: 4,
                pipelined_requests: 5_000,
                huge_bodies: 500,
                http2_lines: 1_000,
                head_floods: 50,
                slow_heads: 100,
                smuggling_repeats: 20,
                injection_repeats: 5,
                connection_cap: None,
                over_cap: 50,
                flood_budget: 32 << 20,
                flood_for: secs(20),
                flood_ids: 200,
                flood_connections: 4,
            }
        } else {
            Scale {
                full,
                phase: ms(1500),
                recovery: secs(20),
                request_timeout: secs(2),
                write_timeout: secs(2),
                push_timeout: secs(3),
                slowloris: 100,
                slowloris_every: ms(500),
                slowloris_hold: secs(6),
                silent: 50,
                silent_hold: secs(5),
                stalled: 10,
                slow: 5,
                viewers_hold: secs(6),
                stalled_bound: secs(30),
                churn: 1_000,
                mid_frame: 200,
                cut_pushes: 10,
                short_pushes: 5,
                absurd_pushes: 2,
                malformed_repeats: 5,
                fd_limit: 256,
                fd_connections: 400,
                fd_hold: secs(2),
                fd_recover: secs(30),
                pipelined_connections: 4,
                pipelined_requests: 1_000,
                huge_bodies: 200,
                http2_lines: 300,
                head_floods: 10,
                slow_heads: 20,
                smuggling_repeats: 3,
                injection_repeats: 1,
                connection_cap: Some(64),
                over_cap: 10,
                flood_budget: 16 << 20,
                flood_for: secs(4),
                flood_ids: 40,
                flood_connections: 2,
            }
        };
        if let Ok(mib) = std::env::var("FLOOD_BUDGET_MIB") {
            let mib: usize = mib
                .parse()
                .unwrap_or_else(|_| panic!("FLOOD_BUDGET_MIB={mib:?}: expected a number"));
            scale.flood_budget = mib << 20;
        }
        scale
    }

    pub fn name(&self) -> &'static str {
        if self.full {
            "full"
        } else {
            "quick"
        }
    }

    /// Flags for the relay: the short timeouts at quick scale, the defaults at full scale.
    /// A relay that does not know `--request-timeout` and `--push-timeout` yet gets only
    /// `--write-timeout`; [`Scale::relay_note`] says so in the report.
    pub fn relay_args(&self) -> Vec<String> {
        if self.full {
            return Vec::new();
        }
        QUICK_TIMEOUTS
            .iter()
            .filter(|(flag, _)| relay_has_timeouts() || *flag == "--write-timeout")
            .flat_map(|(flag, value)| [flag.to_string(), value.to_string()])
            .collect()
    }

    /// Flags for a relay whose request and push timeouts stay at their defaults (10 s and
    /// 60 s) at either scale: for attacks that tell a connection the relay closes at once
    /// from one it keeps until a timeout ([`PATIENT_REQUEST_TIMEOUT`]). Only the quick scale's
    /// `--write-timeout` is kept, for viewers that stall.
    pub fn patient_relay_args(&self) -> Vec<String> {
        let mut args = self.relay_args();
        if let Some(at) = args.iter().position(|arg| arg == "--request-timeout") {
            args.drain(at..at + 2);
        }
        if let Some(at) = args.iter().position(|arg| arg == "--push-timeout") {
            args.drain(at..at + 2);
        }
        args
    }

    /// One line on the relay's settings, for the report.
    pub fn relay_note(&self) -> String {
        let args = self.relay_args();
        let settings = if args.is_empty() {
            "default timeouts".to_string()
        } else {
            args.join(" ")
        };
        if relay_has_timeouts() {
            settings
        } else {
            format!(
                "{settings} (this relay has no --request-timeout or --push-timeout: idle \
                 connections and silent pushes are only closed when the client leaves)"
            )
        }
    }
}

/// Whether the relay binary accepts `--request-timeout` and `--push-timeout`: it exits 0 on
/// `--version` only if every flag before it parsed.
pub fn relay_has_timeouts() -> bool {
    static KNOWN: OnceLock<bool> = OnceLock::new();
    *KNOWN.get_or_init(|| {
        Command::new(env!("CARGO_BIN_EXE_streampump"))
            .args([
                "--request-timeout",
                "2s",
                "--push-timeout",
                "3s",
                "--version",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    })
}

/// Attacks open hundreds of sockets from this process; the soft limit is often 1024.
fn raise_own_descriptor_limit() {
    static RAISED: Once = Once::new();
    RAISED.call_once(|| {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0
                && limit.rlim_cur < limit.rlim_max
            {
                limit.rlim_cur = limit.rlim_max;
                libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            }
        }
    });
}
