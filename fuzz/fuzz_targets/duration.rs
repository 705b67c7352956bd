//! Fuzzes `parse_duration`, which reads every duration setting (`--offline-after 10s` and the
//! other timeouts) from flags and environment variables.
//!
//! Settings are not client input, but they are typed by people and a panic at start-up is a
//! poor error message. `Duration::from_secs_f64` panics on negative, NaN or overflowing values,
//! so the range check in front of it is what this target exercises. Checked: no panic; an
//! accepted duration is within the 0 to 10⁹ s the parser promises and can be added to the
//! current instant (the relay sets deadlines that way); only a number followed by nothing,
//! `s`, `ms`, `m` or `h` is accepted.

#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use streampump::config::parse_duration;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The config code trims before parsing; check both forms.
    for candidate in [text, text.trim()] {
        let Some(duration) = parse_duration(candidate) else {
            continue;
        };
        assert!(
            duration <= Duration::from_secs(1_000_000_000),
            "{candidate:?} gave {duration:?}"
        );
        assert!(Instant::now().checked_add(duration).is_some());
        let number = candidate.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        let unit = &candidate[number.len()..];
        assert!(
            matches!(unit, "" | "s" | "ms" | "m" | "h"),
            "{candidate:?} accepted with unit {unit:?}"
        );
        assert!(
            !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit() || b == b'.'),
            "{candidate:?} accepted with number {number:?}"
        );
    }
});
