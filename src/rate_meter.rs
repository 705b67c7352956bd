//! Recent input frame rate, from the times of the last pushes.
//!
//! A ring of timestamps rather than a running average: it answers "how fast is this phone
//! pushing right now" exactly over a short window, and falls to zero by itself when pushes stop.

use std::time::{Duration, Instant};

const CAPACITY: usize = 64;
/// Pushes older than this do not count as recent.
pub const WINDOW: Duration = Duration::from_secs(3);

#[derive(Debug)]
pub struct RateMeter {
    times: [Option<Instant>; CAPACITY],
    next: usize,
}

impl Default for RateMeter {
    fn default() -> Self {
        RateMeter {
            times: [None; CAPACITY],
            next: 0,
        }
    }
}

impl RateMeter {
    pub fn record(&mut self, at: Instant) {
        self.times[self.next] = Some(at);
        self.next = (self.next + 1) % CAPACITY;
    }

    /// Events per second over the recent window ending at `now`.
    pub fn per_second(&self, now: Instant) -> f64 {
        let recent = || {
            self.times
                .iter()
                .flatten()
                .filter(|t| now.saturating_duration_since(**t) <= WINDOW)
        };
        let count = recent().count();
        let (Some(oldest), Some(newest)) = (recent().min(), recent().max()) else {
            return 0.0;
        };
        let span = newest.duration_since(*oldest).as_secs_f64();
        if count < 2 || span <= 0.0 {
            return 0.0;
        }
        (count - 1) as f64 / span
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_steady_rate() {
        let start = Instant::now();
        let mut meter = RateMeter::default();
        for i in 0..30 {
            meter.record(start + Duration::from_millis(i * 100));
        }
        let rate = meter.per_second(start + Duration::from_millis(2950));
        assert!((rate - 10.0).abs() < 0.01, "{rate}");
    }

    #[test]
    fn falls_to_zero_when_pushes_stop() {
        let start = Instant::now();
        let mut meter = RateMeter::default();
        meter.record(start);
        meter.record(start + Duration::from_millis(50));
        assert!(meter.per_second(start + Duration::from_millis(60)) > 0.0);
        assert_eq!(meter.per_second(start + Duration::from_secs(10)), 0.0);
        assert_eq!(RateMeter::default().per_second(start), 0.0);
    }

    #[test]
    fn keeps_only_the_newest_when_full() {
        let start = Instant::now();
        let mut meter = RateMeter::default();
        for i in 0..(CAPACITY as u64 * 3) {
            meter.record(start + Duration::from_millis(i * 10));
        }
        let now = start + Duration::from_millis(CAPACITY as u64 * 3 * 10);
        assert!((meter.per_second(now) - 100.0).abs() < 0.5);
    }
}
