//! Dates for certificates, from the system clock in whole days.
//!
//! rcgen takes `time` dates; the relay has its own calendar arithmetic already (for the HTTP
//! `Date` header), so a day count is turned into a date here rather than pulling in `time`'s
//! clock support.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{date_time_ymd, CertificateParams};

use crate::http::date::civil_from_days;

/// 2026-12-01, in days since 1970-01-01: no clock showing an earlier day is right, since this
/// code did not exist before it.
const EARLIEST_DAY: u64 = 20_788;

static CLOCK_WARNED: AtomicBool = AtomicBool::new(false);

/// Days since 1970-01-01, by the system clock, but never before [`EARLIEST_DAY`].
///
/// A router without a battery-backed clock may start the relay before NTP has set the time,
/// at 1970. A certificate authority made then would have expired in 1990 by the time the clock
/// is right, and be kept for ever; a server certificate would be dated decades before any
/// phone's clock. Dated from the earliest possible day instead, both are valid for a phone at
/// once, and the server certificate is renewed on the usual schedule once the clock is set.
pub fn days_now() -> u64 {
    let today = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() / 86_400);
    if today < EARLIEST_DAY {
        // Once: the certificates are looked at every 30 s until the clock is set.
        if !CLOCK_WARNED.swap(true, Ordering::Relaxed) {
            log::warn!(
                "the system clock is before 2026-12-01 (not set yet?): certificates are dated \
                 from that day instead"
            );
        }
        return EARLIEST_DAY;
    }
    today
}

/// Makes `params` valid from midnight UTC of day `from` to midnight of day `until` (days
/// since 1970-01-01).
pub fn set_validity(params: &mut CertificateParams, from: u64, until: u64) {
    let (year, month, day) = ymd(from);
    params.not_before = date_time_ymd(year, month, day);
    let (year, month, day) = ymd(until);
    params.not_after = date_time_ymd(year, month, day);
}

fn ymd(days: u64) -> (i32, u8, u8) {
    let (year, month, day) = civil_from_days(days);
    (
        i32::try_from(year).unwrap_or(9999),
        u8::try_from(month).unwrap_or(1),
        u8::try_from(day).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earliest_day_is_the_first_of_december_2026() {
        assert_eq!(civil_from_days(EARLIEST_DAY), (2026, 12, 1));
        assert!(days_now() >= EARLIEST_DAY);
    }
}
