//! Fuzzes `DeviceId::parse`, the gate every device name passes before it is stored.
//!
//! Ids come from push URLs and `?device_id=` and then appear in log lines, JSON, URLs users
//! paste into go2rtc and Home Assistant, and later in metric labels; all of those rely on the
//! rule in `device_id.rs`: 1 to 64 bytes from `A-Z a-z 0-9 _ . -`, not only dots (`.` and `..`
//! are path segments that clients resolve away). This target restates that
//! rule independently and checks the parser agrees with it on every input, so a loosened check
//! cannot slip through: an accepted id reads back unchanged and holds no `/`, NUL, whitespace,
//! control or non-ASCII character, and nothing outside the rule is accepted.

#![no_main]

use libfuzzer_sys::fuzz_target;
use streampump::relay::device_id::{DeviceId, InvalidDeviceId, MAX_LEN};

fuzz_target!(|data: &[u8]| {
    // Ids are taken from already-decoded UTF-8 text.
    let Ok(candidate) = std::str::from_utf8(data) else {
        return;
    };
    let follows_rule = (1..=MAX_LEN).contains(&candidate.len())
        && candidate
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'-'))
        && !candidate.bytes().all(|byte| byte == b'.');

    match DeviceId::parse(candidate) {
        Ok(id) => {
            assert!(follows_rule, "{candidate:?} accepted");
            assert_eq!(id.as_str(), candidate);
            assert_eq!(id.to_string(), candidate);
            assert!(
                !candidate.contains(['/', '\\', '\0', '%', '?', '#', '&', '"'])
                    && !candidate
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_control())
                    && candidate.is_ascii(),
                "{candidate:?} accepted"
            );
        }
        Err(refused) => {
            assert!(!follows_rule, "{candidate:?} refused as {refused:?}");
            let expected = if candidate.is_empty() {
                InvalidDeviceId::Empty
            } else if candidate.len() > MAX_LEN {
                InvalidDeviceId::TooLong
            } else if candidate.bytes().all(|byte| byte == b'.') {
                InvalidDeviceId::OnlyDots
            } else {
                InvalidDeviceId::BadCharacter
            };
            assert_eq!(refused, expected, "{candidate:?}");
        }
    }
});
