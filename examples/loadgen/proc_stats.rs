//! What the server process costs, read from `/proc/PID` (Linux only, like the routers the
//! relay targets).
//!
//! CPU time is `utime + stime` from `/proc/PID/stat`, in clock ticks (`sysconf(_SC_CLK_TCK)`,
//! 100 per second on every common kernel), read at the start and end of the measurement window.
//! Memory and threads come from `/proc/PID/status`: a sampler thread reads `VmRSS` and
//! `Threads` every 200 ms and keeps the peaks, plus the kernel's own high-water mark `VmHWM`.
//! Sampling can miss a short spike between two reads; `VmHWM` cannot, which is why both are
//! reported.

use std::fs;
use std::io;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::clock::Phases;
use crate::THREAD_STACK_BYTES;

const SAMPLE_PERIOD: Duration = Duration::from_millis(200);

/// One reading of the process's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProcSample {
    /// User plus system CPU time, in clock ticks.
    pub cpu_ticks: u64,
    pub rss_kb: u64,
    pub hwm_kb: u64,
    pub threads: u64,
}

/// Reads `/proc/PID/stat` and `/proc/PID/status`.
pub fn read(pid: u32) -> io::Result<ProcSample> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let malformed = |file: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected format of /proc/{pid}/{file}"),
        )
    };
    if has_exited(&status) {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("process {pid} has exited"),
        ));
    }
    let cpu_ticks = parse_cpu_ticks(&stat).ok_or_else(|| malformed("stat"))?;
    let (rss_kb, hwm_kb, threads) = parse_status(&status).ok_or_else(|| malformed("status"))?;
    Ok(ProcSample {
        cpu_ticks,
        rss_kb,
        hwm_kb,
        threads,
    })
}

/// Clock ticks per second for [`ProcSample::cpu_ticks`].
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
}

/// `utime + stime`: fields 14 and 15 of `stat`. The command name (field 2) may contain spaces
/// and parentheses, so fields are counted from the last `)`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// A process that exited but was not reaped yet (a zombie, `State: Z`) still has a `/proc`
/// entry, without any memory lines.
fn has_exited(status: &str) -> bool {
    status
        .lines()
        .find_map(|line| line.strip_prefix("State:"))
        .is_some_and(|state| matches!(state.trim_start().chars().next(), Some('Z' | 'X')))
}

/// `(VmRSS kB, VmHWM kB, Threads)`.
fn parse_status(status: &str) -> Option<(u64, u64, u64)> {
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|line| line.starts_with(name))?;
        line[name.len()..].split_whitespace().next()?.parse().ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?, field("Threads:")?))
}

/// Peaks seen by the sampler.
#[derive(Debug, Clone, Default)]
pub struct Peaks {
    pub rss_kb: u64,
    /// The last `VmHWM` read: the kernel's peak since the process started.
    pub hwm_kb: u64,
    pub threads: u64,
    pub samples: u64,
    /// Why sampling stopped early (the process exited or vanished), if it did.
    pub lost: Option<String>,
}

impl Peaks {
    fn add(&mut self, sample: &ProcSample) {
        self.rss_kb = self.rss_kb.max(sample.rss_kb);
        self.hwm_kb = self.hwm_kb.max(sample.hwm_kb);
        self.threads = self.threads.max(sample.threads);
        self.samples += 1;
    }
}

/// Samples `pid` every 200 ms until the run stops or the process goes away.
pub fn spawn_sampler(pid: u32, phases: Arc<Phases>) -> io::Result<JoinHandle<Peaks>> {
    thread::Builder::new()
        .name("lg-proc-sampler".into())
        .stack_size(THREAD_STACK_BYTES)
        .spawn(move || {
            let mut peaks = Peaks::default();
            let mut next = Instant::now();
            loop {
                match read(pid) {
                    Ok(sample) => peaks.add(&sample),
                    Err(error) => {
                        peaks.lost = Some(format!("stopped sampling process {pid}: {error}"));
                        break;
                    }
                }
                next += SAMPLE_PERIOD;
                if !phases.sleep_until(next) {
                    break;
                }
            }
            peaks
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_counted_after_the_command_name() {
        let stat = "4242 (sp (a) b) S 1 4242 4242 0 -1 4194560 520 0 0 0 \
                    731 269 0 0 20 0 12 0 5555 12345678 1200 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some(731 + 269));
        assert_eq!(parse_cpu_ticks("4242 (x) S 1"), None);
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn memory_and_threads_come_from_status() {
        let status = "Name:\tstreampump\nVmPeak:\t  9000 kB\nVmHWM:\t    4100 kB\n\
                      VmRSS:\t    3900 kB\nThreads:\t214\n";
        assert_eq!(parse_status(status), Some((3900, 4100, 214)));
        let zombie = "Name:\tstreampump\nState:\tZ (zombie)\nThreads:\t1\n";
        assert_eq!(parse_status(zombie), None);
        assert!(has_exited(zombie));
        assert!(!has_exited(status));
    }

    #[test]
    fn reads_this_process() {
        let sample = read(std::process::id()).unwrap();
        assert!(sample.rss_kb > 0 && sample.hwm_kb >= sample.rss_kb / 2);
        assert!(sample.threads >= 1);
        assert!(ticks_per_second() > 0);
    }
}
