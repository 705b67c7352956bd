//! Decimal numbers read and written in fixed point, without floating point.
//!
//! Why: the relay's main targets are soft-float MIPS routers with a few megabytes of flash.
//! Parsing and printing `f64` drags the float tables of `core`, software float routines and
//! their unwind tables into the binary (about 20 KB on mipsel), all for three numbers: the
//! duration settings, a viewer's `?fps=` and the input rate in `/api/devices`. None of them
//! needs more than six decimal places, so integers hold them exactly.

use std::fmt;
use std::time::Duration;

/// Fraction digits kept by [`parse_millionths`]; further digits are ignored, not rounded.
const FRACTION_DIGITS: usize = 6;
pub const ONE: u64 = 1_000_000;

/// Reads `digits`, `digits.digits` or `.digits` as a count of millionths: `"1.5"` is
/// 1 500 000. Signs, exponents, spaces and empty strings are refused, as is a value whose
/// millionths do not fit in a `u64`.
pub fn parse_millionths(text: &str) -> Option<u64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    let mut millionths: u64 = 0;
    for digit in whole.bytes() {
        millionths = millionths
            .checked_mul(10)?
            .checked_add(u64::from(digit - b'0'))?;
    }
    millionths = millionths.checked_mul(ONE)?;
    let mut place = ONE;
    for digit in fraction.bytes().take(FRACTION_DIGITS) {
        place /= 10;
        millionths = millionths.checked_add(u64::from(digit - b'0') * place)?;
    }
    Some(millionths)
}

/// Whole milliseconds of `duration`, saturating. `Duration::as_millis` returns a `u128`, whose
/// formatting and division pull about 3 KB of 128-bit routines into a 32-bit binary.
pub fn whole_millis(duration: Duration) -> u64 {
    duration
        .as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(duration.subsec_millis()))
}

/// Whole nanoseconds of `duration`, saturating (see [`whole_millis`]).
pub fn whole_nanos(duration: Duration) -> u64 {
    duration
        .as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(duration.subsec_nanos()))
}

/// A duration the way `--check` prints it and the duration flags read it back: `10s`, `500ms`,
/// `1.5s`, `0.000001s`. Written here because the MIPS builds compile `{:?}` to nothing (see
/// `quoted`), and Duration's own printing is its `Debug`.
pub struct Seconds(pub Duration);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (secs, nanos) = (self.0.as_secs(), self.0.subsec_nanos());
        if nanos == 0 {
            return write!(f, "{secs}s");
        }
        if secs == 0 && nanos % 1_000_000 == 0 {
            return write!(f, "{}ms", nanos / 1_000_000);
        }
        let (mut fraction, mut digits) = (nanos / 1000, 6);
        while fraction % 10 == 0 && digits > 1 {
            fraction /= 10;
            digits -= 1;
        }
        write!(f, "{secs}.{fraction:0digits$}s")
    }
}

/// A non-negative number printed with exactly two decimals, as JSON and people expect a rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Hundredths(pub u64);

impl fmt::Display for Hundredths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_the_flags_read_them() {
        for (duration, text) in [
            (Duration::from_secs(10), "10s"),
            (Duration::from_secs(600), "600s"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_micros(1), "0.000001s"),
        ] {
            assert_eq!(Seconds(duration).to_string(), text);
            assert_eq!(crate::config::parse_duration(text), Some(duration));
        }
    }

    #[test]
    fn reads_whole_and_fractional_numbers() {
        assert_eq!(parse_millionths("0"), Some(0));
        assert_eq!(parse_millionths("10"), Some(10 * ONE));
        assert_eq!(parse_millionths("1.5"), Some(1_500_000));
        assert_eq!(parse_millionths("0.2"), Some(200_000));
        assert_eq!(parse_millionths(".25"), Some(250_000));
        assert_eq!(parse_millionths("3."), Some(3 * ONE));
        assert_eq!(parse_millionths("0.0000019"), Some(1));
        assert_eq!(parse_millionths("007"), Some(7 * ONE));
    }

    #[test]
    fn refuses_anything_else() {
        for text in [
            "", ".", "-1", "+1", "1e3", "1.2.3", " 1", "1 ", "inf", "NaN", "0x10", "1_000", "½",
        ] {
            assert_eq!(parse_millionths(text), None, "{text:?}");
        }
    }

    #[test]
    fn refuses_overflow_instead_of_wrapping() {
        assert_eq!(
            parse_millionths("18446744073709"),
            Some(18_446_744_073_709 * ONE)
        );
        assert_eq!(parse_millionths("18446744073710"), None);
        assert_eq!(parse_millionths("99999999999999999999999"), None);
    }

    #[test]
    fn durations_become_whole_units_without_overflow() {
        assert_eq!(whole_millis(Duration::from_micros(1_999)), 1);
        assert_eq!(whole_millis(Duration::from_secs(3)), 3000);
        assert_eq!(whole_millis(Duration::MAX), u64::MAX);
        assert_eq!(whole_nanos(Duration::new(2, 5)), 2_000_000_005);
        assert_eq!(whole_nanos(Duration::MAX), u64::MAX);
    }

    #[test]
    fn prints_two_decimals() {
        assert_eq!(Hundredths(1499).to_string(), "14.99");
        assert_eq!(Hundredths(5).to_string(), "0.05");
        assert_eq!(Hundredths(0).to_string(), "0.00");
        assert_eq!(Hundredths(100_000).to_string(), "1000.00");
    }
}
