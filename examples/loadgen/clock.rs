//! Time in a load run: the shared epoch frames are stamped against, the measurement window,
//! and the stop signal every thread watches.
//!
//! Threads start at different moments (pushers first, viewers once every device has a frame),
//! so each one records an event only when it falls inside the window, and each one polls
//! [`Phases::stopping`] between blocking calls, which all have timeouts. That is what makes a
//! run end by itself: nothing waits on anything without a deadline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// Longest single sleep, so a sleeping thread notices the stop signal quickly.
const SLEEP_SLICE: Duration = Duration::from_millis(100);

/// A fixed-rate schedule from a start time. A caller that falls behind (a slow push) skips
/// the ticks it missed instead of bursting to catch up, as a phone's capture loop would.
#[derive(Debug, Clone, Copy)]
pub struct Ticker {
    start: Instant,
    interval_ns: u128,
    tick: u128,
}

impl Ticker {
    pub fn new(start: Instant, interval: Duration) -> Ticker {
        Ticker {
            start,
            interval_ns: interval.as_nanos().max(1),
            tick: 0,
        }
    }

    /// When the next tick is due.
    pub fn due(&self) -> Instant {
        let offset = u64::try_from(self.tick * self.interval_ns).unwrap_or(u64::MAX);
        self.start + Duration::from_nanos(offset)
    }

    /// After serving a tick: moves on to the next tick still ahead.
    pub fn advance(&mut self) {
        let elapsed = Instant::now()
            .saturating_duration_since(self.start)
            .as_nanos();
        self.tick = elapsed / self.interval_ns + 1;
    }
}

/// The run's epoch. Send times travel inside frames as nanoseconds since it; pusher and viewer
/// threads share the process's monotonic clock, so the difference is a true latency.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: Instant,
}

impl Clock {
    pub fn start() -> Clock {
        Clock {
            epoch: Instant::now(),
        }
    }

    #[cfg(test)]
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// Nanoseconds from the epoch to `at` (zero for instants before it).
    pub fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }
}

/// The span in which events are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: Instant,
    pub end: Instant,
}

impl Window {
    pub fn contains(&self, at: Instant) -> bool {
        self.start <= at && at < self.end
    }
}

/// Shared by every thread of a run through an `Arc`.
#[derive(Debug)]
pub struct Phases {
    clock: Clock,
    window: OnceLock<Window>,
    stop: AtomicBool,
}

impl Phases {
    pub fn new(clock: Clock) -> Phases {
        Phases {
            clock,
            window: OnceLock::new(),
            stop: AtomicBool::new(false),
        }
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Fixes the measurement window; it is set once, before it starts.
    pub fn set_window(&self, window: Window) {
        // A second call cannot happen (the run sets it once); keeping the first is right anyway.
        let _ = self.window.set(window);
    }

    /// Whether an event at `at` is counted.
    pub fn in_window(&self, at: Instant) -> bool {
        self.window.get().is_some_and(|window| window.contains(at))
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Blocks until the run is stopping.
    pub fn wait_for_stop(&self) {
        while !self.stopping() {
            thread::sleep(SLEEP_SLICE);
        }
    }

    /// Sleeps until `deadline` in short slices. Returns `false` if the run is stopping.
    pub fn sleep_until(&self, deadline: Instant) -> bool {
        loop {
            if self.stopping() {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            thread::sleep((deadline - now).min(SLEEP_SLICE));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_count_only_inside_the_window() {
        let phases = Phases::new(Clock::start());
        let start = Instant::now();
        assert!(!phases.in_window(start), "no window yet");
        let window = Window {
            start,
            end: start + Duration::from_secs(1),
        };
        phases.set_window(window);
        assert!(phases.in_window(start));
        assert!(phases.in_window(start + Duration::from_millis(999)));
        assert!(!phases.in_window(start + Duration::from_secs(1)));
    }

    #[test]
    fn sleeping_ends_early_when_stopping() {
        let phases = Phases::new(Clock::start());
        assert!(phases.sleep_until(Instant::now() + Duration::from_millis(5)));
        phases.stop();
        let far = Instant::now() + Duration::from_secs(3600);
        assert!(!phases.sleep_until(far));
    }

    #[test]
    fn nanos_count_from_the_epoch() {
        let clock = Clock::start();
        assert_eq!(clock.nanos(clock.epoch()), 0);
        assert_eq!(clock.nanos(clock.epoch() + Duration::from_micros(3)), 3_000);
    }
}
