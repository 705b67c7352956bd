//! What the relay process holds: threads, open descriptors and resident memory, from `/proc`.
//!
//! These are what an attack can pin (a thread and a descriptor per connection, buffers per
//! request), so they are read at the baseline, sampled for their peak during the attack and
//! polled afterwards until they are back. Threads and descriptors must come back to the
//! baseline exactly: the relay runs a main thread (the accept loop), one housekeeping thread
//! and one thread per open connection, and the normal load has as many connections after an
//! attack as before it, so one thread or descriptor more is one the attack left behind. Only
//! memory gets an allowance, for what the allocator keeps of freed buffers and stacks.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::clock::{Clock, Phases};
use crate::proc_stats;
use crate::THREAD_STACK_BYTES;

const SAMPLE_PERIOD: Duration = Duration::from_millis(100);

/// One reading of the relay's holdings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub threads: u64,
    pub fds: u64,
    pub rss_kb: u64,
}

impl Usage {
    /// Reads `/proc/PID`; an error means the process has exited.
    pub fn read(pid: u32) -> io::Result<Usage> {
        let sample = proc_stats::read(pid)?;
        let fds = fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64;
        let rss_kb = if emulated() {
            guest_rss_kb(pid)?
        } else {
            sample.rss_kb
        };
        Ok(Usage {
            threads: sample.threads,
            fds,
            rss_kb,
        })
    }

    fn max(self, other: Usage) -> Usage {
        Usage {
            threads: self.threads.max(other.threads),
            fds: self.fds.max(other.fds),
            rss_kb: self.rss_kb.max(other.rss_kb),
        }
    }

    pub fn rss_mb(&self) -> f64 {
        self.rss_kb as f64 / 1024.0
    }
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} threads, {} fds, RSS {:.1} MB",
            self.threads,
            self.fds,
            self.rss_mb()
        )
    }
}

/// Whether the relay runs under an emulator (`STREAMPUMP_TEST_RUNNER`, e.g. qemu-mipsel).
pub fn emulated() -> bool {
    std::env::var("STREAMPUMP_TEST_RUNNER").is_ok_and(|runner| !runner.is_empty())
}

/// The resident memory of a 32-bit relay run by qemu-user: its mappings, which qemu places
/// below 4 GiB (guest addresses as they are), and not qemu's own heap, libraries and
/// translated code above. qemu-user 7.2 keeps about 9 KB of its heap for every thread the
/// relay ever started (a thread per connection), which a router's kernel would not: the
/// process's RSS would blame the relay for the emulator.
fn guest_rss_kb(pid: u32) -> io::Result<u64> {
    let smaps = fs::read_to_string(format!("/proc/{pid}/smaps"))?;
    let mut guest = false;
    let mut total = 0;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or_default();
        if let Some((start, _)) = first.split_once('-') {
            if let Ok(start) = u64::from_str_radix(start, 16) {
                guest = start < 1 << 32;
                continue;
            }
        }
        if let Some(kb) = line.strip_prefix("Rss:") {
            if guest {
                total += kb
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .unwrap_or(0);
            }
        }
    }
    Ok(total)
}

/// The relay's threads by name, most numerous first: `sp-handler ×40, streampump ×12`.
/// Says whose threads are left over when the count does not come back.
pub fn thread_names(pid: u32) -> String {
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    if let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let name = fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            *names.entry(name.trim().to_string()).or_default() += 1;
        }
    }
    let mut names: Vec<(String, usize)> = names.into_iter().collect();
    names.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    names
        .iter()
        .map(|(name, count)| format!("{name} ×{count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What glibc's cache of freed thread stacks may keep resident after a burst of threads. glibc
/// keeps up to 40 MiB of exited threads' stacks for reuse, and the pages those stacks touched
/// stay in RSS (measured: about 5 MB after a thousand short connections, gone with
/// `GLIBC_TUNABLES=glibc.pthread.stack_cache_size=0`). musl, used for the static release
/// builds, keeps no such cache. RELIABILITY.md explains it.
const GLIBC_STACK_CACHE_KB: u64 = if cfg!(target_env = "gnu") {
    8 * 1024
} else {
    0
};

/// How far above the baseline the relay's RSS may rise while an attack that could make it
/// buffer (heads, bodies) runs: the relay reads a head into one fixed 8 KiB buffer per
/// connection and sizes nothing by a declared length, so hundreds of such requests cost a few
/// megabytes; the bound is generous on purpose, for allocator and stack noise.
pub const RSS_BOUND_KB: u64 = 32 * 1024;

/// The failure to report when `peak` rose more than [`RSS_BOUND_KB`] above `baseline` while
/// `during` (e.g. "the floods") went on.
pub fn rss_over_bound(peak: Usage, baseline: Usage, during: &str) -> Option<String> {
    let grew_kb = peak.rss_kb.saturating_sub(baseline.rss_kb);
    (grew_kb > RSS_BOUND_KB).then(|| {
        format!(
            "RSS rose to {:.1} MB during {during}, {:.1} MB over the baseline (bound: {} MB)",
            peak.rss_mb(),
            grew_kb as f64 / 1024.0,
            RSS_BOUND_KB / 1024
        )
    })
}

/// How far above the baseline the relay may stay once an attack is over.
#[derive(Debug, Clone, Copy)]
pub struct Allowance {
    pub threads: u64,
    pub fds: u64,
    pub rss_kb: u64,
}

impl Allowance {
    /// None for threads and descriptors (see the module docs); memory the allocator keeps.
    pub const AFTER_ATTACK: Allowance = Allowance {
        threads: 0,
        fds: 0,
        rss_kb: 8 * 1024 + GLIBC_STACK_CACHE_KB,
    };

    /// `None` when `now` is within the allowance, else what is over, with the numbers.
    pub fn excess(&self, baseline: Usage, now: Usage) -> Option<String> {
        let mut over = Vec::new();
        if now.threads > baseline.threads + self.threads {
            over.push(format!(
                "threads {} > baseline {} + {}",
                now.threads, baseline.threads, self.threads
            ));
        }
        if now.fds > baseline.fds + self.fds {
            over.push(format!(
                "fds {} > baseline {} + {}",
                now.fds, baseline.fds, self.fds
            ));
        }
        if now.rss_kb > baseline.rss_kb + self.rss_kb {
            over.push(format!(
                "RSS {} kB > baseline {} kB + {} kB",
                now.rss_kb, baseline.rss_kb, self.rss_kb
            ));
        }
        (!over.is_empty()).then(|| over.join(", "))
    }
}

/// Samples the relay every 100 ms in a thread of its own and keeps the peaks.
pub struct PeakSampler {
    phases: Arc<Phases>,
    handle: Option<JoinHandle<Usage>>,
}

impl PeakSampler {
    pub fn start(pid: u32) -> PeakSampler {
        let phases = Arc::new(Phases::new(Clock::start()));
        let stop = Arc::clone(&phases);
        let handle = thread::Builder::new()
            .name("abuse-sampler".into())
            .stack_size(THREAD_STACK_BYTES)
            .spawn(move || {
                let mut peak = Usage::default();
                let mut next = Instant::now();
                while let Ok(usage) = Usage::read(pid) {
                    peak = peak.max(usage);
                    next += SAMPLE_PERIOD;
                    if !stop.sleep_until(next) {
                        break;
                    }
                }
                peak
            })
            .expect("start the sampler thread");
        PeakSampler {
            phases,
            handle: Some(handle),
        }
    }

    /// Stops sampling and returns the peaks (of each figure separately).
    pub fn finish(mut self) -> Usage {
        self.phases.stop();
        self.handle
            .take()
            .and_then(|handle| handle.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for PeakSampler {
    fn drop(&mut self) {
        self.phases.stop();
    }
}
