//! Recent input frame rate, from the times of the last pushes.
//!
//! A ring of timestamps rather than a running average: it answers "how fast is this phone
//! pushing right now" exactly over a short window, and falls to zero by itself when pushes stop.

use std::time::{Duration, Instant};

use crate::text::decimal::{self, Hundredths};

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

    /// Events per second over the recent window ending at `now`, rounded to hundredths.
    pub fn per_second(&self, now: Instant) -> Hundredths {
        let recent = || {
            self.times
                .iter()
                .flatten()
                .filter(|t| now.saturating_duration_since(**t) <= WINDOW)
        };
        let count = recent().count();
        let (Some(oldest), Some(newest)) = (recent().min(), recent().max()) else {
            return Hundredths(0);
        };
        let span_nanos = decimal::whole_nanos(newest.duration_since(*oldest));
        if count < 2 || span_nanos == 0 {
            return Hundredths(0);
        }
        // At most CAPACITY events: no overflow in u64.
        let hundredth_nanos = (count as u64 - 1) * 100 * 1_000_000_000;
        Hundredths((hundredth_nanos + span_nanos / 2) / span_nanos)
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
        assert_eq!(rate, Hundredths(1000));
    }

    #[test]
    fn falls_to_zero_when_pushes_stop() {
        let start = Instant::now();
        let mut meter = RateMeter::default();
        meter.record(start);
        meter.record(start + Duration::from_millis(50));
        assert_eq!(
            meter.per_second(start + Duration::from_millis(60)),
            Hundredths(2000)
        );
        assert_eq!(
            meter.per_second(start + Duration::from_secs(10)),
            Hundredths(0)
        );
        assert_eq!(RateMeter::default().per_second(start), Hundredths(0));
    }

    #[test]
    fn keeps_only_the_newest_when_full() {
        let start = Instant::now();
        let mut meter = RateMeter::default();
        for i in 0..(CAPACITY as u64 * 3) {
            meter.record(start + Duration::from_millis(i * 10));
        }
        let now = start + Duration::from_millis(CAPACITY as u64 * 3 * 10);
        assert_eq!(meter.per_second(now), Hundredths(10_000));
    }
}
