//! Dates for certificates, from the system clock in whole days.
//!
//! rcgen takes `time` dates; the relay has its own calendar arithmetic already (for the HTTP
//! `Date` header), so a day count is turned into a date here rather than pulling in `time`'s
//! clock support.

use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{date_time_ymd, CertificateParams};

use crate::http::date::civil_from_days;

/// Days since 1970-01-01, by the system clock.
pub fn days_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() / 86_400)
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
