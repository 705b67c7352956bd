//! One attack's trial, the same for every attack: normal load, a baseline phase, the attack
//! while a second phase measures (for at least a phase's length, however short the attack),
//! then a third phase while the relay must recover.
//!
//! Recovery is judged from the moment the attack lets go of its connections: first the relay
//! must serve (a fresh viewer gets a live frame, `/api/devices` answers), then its threads and
//! descriptors must come back to the baseline exactly and its memory within
//! [`Allowance::AFTER_ATTACK`] of it, polled until the scale's deadline. No attack may leave
//! anything behind for good.
//!
//! At full scale the normal viewers must also have kept the pace during the attack: a median of
//! at least [`MIN_FPS_DURING`] fresh frames per second and a push-to-arrival p99 under
//! [`MAX_P99_MS_DURING`] (unless the attack is one allowed to take the pushers' connections and
//! did). At quick scale (a debug build, two attacks side by side on a shared machine) those
//! figures are recorded, not judged.
//!
//! The normal pushers' lost connections are counted per phase: before (from the moment every
//! device had a push accepted until the attack starts), during and after. Before the attack
//! the relay must not have closed a single one of them; during and after an attack some may
//! legitimately be lost (a relay out of descriptors), so those are reported, not judged.
//! Everything that goes wrong is collected rather than asserted on the spot, so the report row
//! is complete; [`crate::report::finish`] asserts.

use std::thread;
use std::time::{Duration, Instant};

use crate::http::Target;
use crate::load::{device_id, NormalLoad, PhaseFigures, Shape};
use crate::port::Port;
use crate::resources::{Allowance, PeakSampler, Usage};
use crate::scale::Scale;
use crate::stats::Tally;
use crate::support::Relay;
use crate::THREAD_STACK_BYTES;

/// Between two readings of the relay's holdings while waiting for them to come down.
const POLL: Duration = Duration::from_millis(100);
/// Between two attempts at a fresh viewer while the relay is not serving.
const RETRY_SERVING: Duration = Duration::from_millis(200);
/// At full scale, the normal viewers' median frame rate during an attack must be at least
/// this (the load pushes 15 fps)...
pub const MIN_FPS_DURING: f64 = 14.0;
/// ...and their push-to-arrival latency p99 below this many milliseconds.
pub const MAX_P99_MS_DURING: f64 = 20.0;

/// Starts the relay with the scale's flags.
pub fn start_relay(scale: &Scale) -> Relay {
    start_relay_with(scale.relay_args())
}

/// Starts the relay with the scale's flags and, for an attack over HTTPS, its HTTPS port.
pub fn start_relay_for(scale: &Scale, port: Port) -> Relay {
    start_relay_with(port.relay_args(scale.relay_args()))
}

/// Starts the relay with exactly these flags (besides `--listen`).
pub fn start_relay_with(args: Vec<String>) -> Relay {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Relay::start(&args)
}

/// The relay under attack.
pub struct Subject {
    pub pid: u32,
    /// The plain port: the normal load and the recovery probe.
    pub plain: Target,
    /// The port the attack goes at: the same, or the HTTPS port (see [`crate::port`]).
    pub attacked: Target,
}

impl Subject {
    pub fn new(pid: u32, addr: std::net::SocketAddr) -> Subject {
        let target = Target::parse(&format!("http://{addr}")).expect("a loopback address");
        Subject {
            pid,
            attacked: target.clone(),
            plain: target,
        }
    }

    /// `relay`, attacked on `port`.
    pub fn on(relay: &Relay, port: Port) -> Subject {
        Subject {
            pid: relay.pid(),
            plain: Port::Plain.target(relay),
            attacked: port.target(relay),
        }
    }
}

/// What an attack gives an attack function.
pub struct Context<'a> {
    pub subject: &'a Subject,
    pub scale: &'a Scale,
    pub load: &'a NormalLoad,
    /// The relay's holdings under the normal load just before the attack.
    pub baseline: Usage,
}

impl Context<'_> {
    /// Where the attack connects: the plain port, or the HTTPS port for an attack over it.
    pub fn target(&self) -> &Target {
        &self.subject.attacked
    }

    /// The plain port, whatever the attack goes at.
    pub fn plain(&self) -> &Target {
        &self.subject.plain
    }

    pub fn device_ids(&self) -> Vec<String> {
        (0..self.load.shape.devices).map(device_id).collect()
    }
}

/// What an attack reports about itself.
#[derive(Debug, Default)]
pub struct Outcome {
    /// One short cell for the table: what happened to the attacking connections.
    pub notes: String,
    /// Longer markdown for below the table (the malformed requests' answers).
    pub details: Option<String>,
    /// Ways the relay misbehaved that the attack itself saw; the test fails on them.
    pub failures: Vec<String>,
    /// Questionable behaviour worth reading about that is not a failure (it depends on
    /// timing or is a matter of policy).
    pub findings: Vec<String>,
    /// The attack takes what a kept-alive pusher needs (descriptor exhaustion), so the normal
    /// pushers may lose their connections while it lasts; otherwise that is a failure.
    pub starves_pushers: bool,
}

/// One row of the report.
#[derive(Debug)]
pub struct Row {
    pub number: u8,
    pub title: String,
    pub what: String,
    pub before: PhaseFigures,
    pub during: PhaseFigures,
    pub after: PhaseFigures,
    /// Time from the end of the attack until the relay served and was back near baseline.
    pub recovered: Option<Duration>,
    pub baseline: Usage,
    pub peak: Usage,
    /// The last reading after the attack; `None` if the relay had exited.
    pub after_usage: Option<Usage>,
    /// Failed pushes of the normal load over the whole trial. Recorded, not judged: what a
    /// lost push costs shows in the viewers' figures.
    pub pusher_failures: Tally,
    /// The normal pushers' lost kept-alive connections (each one a reconnect) before, during
    /// and after the attack, by reason.
    pub pusher_reconnects: [Tally; 3],
    pub outcome: Outcome,
    /// Every way the relay misbehaved; the test fails if this is not empty.
    pub failures: Vec<String>,
}

/// Runs one attack against `subject` with the normal load of `shape`.
pub fn run(
    number: u8,
    title: &str,
    what: String,
    subject: &Subject,
    shape: Shape,
    scale: &Scale,
    attack: impl FnOnce(&Context) -> Outcome,
) -> Row {
    let load = NormalLoad::start(&subject.plain, shape);
    // A first set of viewers is replaced by the baseline's set while still connected, as
    // viewers come and go in any deployment: handler threads that their streams leave idle may
    // stay pooled, and the baseline includes them rather than blaming them on the attack.
    let warm_up = load.phase();
    warm_up.wait_window_start();
    let before_run = load.phase();
    before_run.wait_window_start();
    warm_up.finish();
    before_run.wait_lasted(scale.phase);
    let baseline = Usage::read(subject.pid).expect("the relay runs at the baseline");
    let before = before_run.finish();

    let sampler = PeakSampler::start(subject.pid);
    let during_run = load.phase();
    during_run.wait_window_start();
    let attack_start = Instant::now();
    let outcome = attack(&Context {
        subject,
        scale,
        load: &load,
        baseline,
    });
    let attack_end = Instant::now();
    // Recovery is checked from the attack's end, while the viewers' window stays open for at
    // least a phase: an attack over in a fraction of a second would otherwise leave a window
    // too short for its frame rate and latency to mean anything.
    let (during, after_run, recovery) = thread::scope(|scope| {
        let recovering = thread::Builder::new()
            .name("abuse-recovery".into())
            .stack_size(THREAD_STACK_BYTES)
            .spawn_scoped(scope, || {
                await_recovery(
                    subject,
                    baseline,
                    Allowance::AFTER_ATTACK,
                    attack_end + scale.recovery,
                )
            })
            .expect("start the recovery check");
        let during = during_run.finish_after(scale.phase);
        let after_run = load.phase();
        let recovery = recovering.join().expect("the recovery check panicked");
        (during, after_run, recovery)
    });
    let after = after_run.finish_after(scale.phase);
    let peak = sampler.finish();
    let (log, ready_at) = (std::sync::Arc::clone(&load.log), load.ready_at);
    let load_end = load.stop();
    let pusher_failures = log.failures(ready_at, load_end);
    let pusher_reconnects = [
        log.reconnects(ready_at, attack_start),
        log.reconnects(attack_start, attack_end),
        log.reconnects(attack_end, load_end),
    ];

    let mut failures = Vec::new();
    if !during.most_receiving() {
        failures.push(format!(
            "only {} of {} normal viewers received frames during the attack",
            during.receiving, during.viewers
        ));
    }
    if let Err(problem) = &recovery.result {
        failures.push(format!("did not recover: {problem}"));
    } else if after.receiving < after.viewers {
        failures.push(format!(
            "after recovery only {} of {} normal viewers received frames",
            after.receiving, after.viewers
        ));
    }
    if pusher_reconnects[0].total() > 0 {
        failures.push(format!(
            "the relay did not keep the normal pushers' kept-alive connections before any \
             attack: lost {} times ({})",
            pusher_reconnects[0].total(),
            pusher_reconnects[0]
        ));
    }
    if pusher_reconnects[1].total() > 0 && !outcome.starves_pushers {
        failures.push(format!(
            "the relay closed the normal pushers' kept-alive connections during the attack: \
             lost {} times ({})",
            pusher_reconnects[1].total(),
            pusher_reconnects[1]
        ));
    }
    if pusher_reconnects[2].total() > 0 {
        failures.push(format!(
            "the relay closed the normal pushers' kept-alive connections after the attack: \
             lost {} times ({})",
            pusher_reconnects[2].total(),
            pusher_reconnects[2]
        ));
    }
    // A pusher that lost its connection to an attack allowed to take it (descriptor
    // exhaustion) has no frames for its viewers: their pace is then not the relay's to keep.
    let pushers_starved = outcome.starves_pushers && pusher_reconnects[1].total() > 0;
    if scale.full && !pushers_starved {
        failures.extend(pace_failures(&during, crate::resources::emulated()));
    }
    failures.extend(outcome.failures.iter().cloned());
    let mut outcome = outcome;
    if during.fps_median < before.fps_median / 2.0 {
        outcome.findings.push(format!(
            "normal viewers slowed from {:.1} to {:.1} fps during the attack",
            before.fps_median, during.fps_median
        ));
    }
    if pusher_failures.total() > 0 {
        outcome.findings.push(format!(
            "pushes of the normal load failed {} times ({pusher_failures})",
            pusher_failures.total()
        ));
    }
    Row {
        number,
        title: title.to_string(),
        what,
        before,
        during,
        after,
        recovered: recovery.result.ok().map(|at| at.duration_since(attack_end)),
        baseline,
        peak: peak_of(peak, baseline),
        after_usage: recovery.usage,
        pusher_failures,
        pusher_reconnects,
        outcome,
        failures,
    }
}

/// Where the normal viewers fell below the pace the full run requires during an attack. Under
/// an emulator (qemu-user running a router's build) only the frame rate is judged: latency
/// there is the emulator's.
fn pace_failures(during: &PhaseFigures, emulated: bool) -> Vec<String> {
    let mut failures = Vec::new();
    if during.fps_median < MIN_FPS_DURING {
        failures.push(format!(
            "normal viewers got {:.1} fps (median) during the attack, below {MIN_FPS_DURING}",
            during.fps_median
        ));
    }
    match during.p99_ms {
        _ if emulated => {}
        Some(p99) if p99 < MAX_P99_MS_DURING => {}
        Some(p99) => failures.push(format!(
            "normal viewers' latency p99 was {p99:.2} ms during the attack, not under \
             {MAX_P99_MS_DURING} ms"
        )),
        None => failures.push("no latency was measured during the attack".to_string()),
    }
    failures
}

/// The sampler misses nothing it could see, but an attack that did not raise a figure leaves
/// its peak at the baseline, not below it.
fn peak_of(peak: Usage, baseline: Usage) -> Usage {
    Usage {
        threads: peak.threads.max(baseline.threads),
        fds: peak.fds.max(baseline.fds),
        rss_kb: peak.rss_kb.max(baseline.rss_kb),
    }
}

struct Recovery {
    /// When the relay was back, or why it was not by the deadline.
    result: Result<Instant, String>,
    /// The last reading; `None` if the relay had exited.
    usage: Option<Usage>,
}

fn await_recovery(
    subject: &Subject,
    baseline: Usage,
    allowance: Allowance,
    deadline: Instant,
) -> Recovery {
    let gone = |error: std::io::Error| Recovery {
        result: Err(format!("the relay process is gone: {error}")),
        usage: None,
    };
    loop {
        if let Err(error) = Usage::read(subject.pid) {
            return gone(error);
        }
        match crate::probe::serving(&subject.plain, 0, &device_id(0)) {
            Ok(()) => break,
            Err(problem) if Instant::now() >= deadline => {
                return Recovery {
                    result: Err(format!("not serving: {problem}")),
                    usage: Usage::read(subject.pid).ok(),
                }
            }
            Err(_) => std::thread::sleep(RETRY_SERVING),
        }
    }
    loop {
        let usage = match Usage::read(subject.pid) {
            Ok(usage) => usage,
            Err(error) => return gone(error),
        };
        let excess = allowance.excess(baseline, usage);
        let now = Instant::now();
        match excess {
            None => {
                return Recovery {
                    result: Ok(now),
                    usage: Some(usage),
                }
            }
            Some(excess) if now >= deadline => {
                let names = crate::resources::thread_names(subject.pid);
                return Recovery {
                    result: Err(format!(
                        "still holding too much at the deadline: {excess} (threads: {names})"
                    )),
                    usage: Some(usage),
                };
            }
            Some(_) => std::thread::sleep(POLL),
        }
    }
}
