//! Device ids: the names phones push under and viewers ask for.
//!
//! Ids end up in log lines, JSON, URLs that users paste into go2rtc and Home Assistant, and
//! (later) metric labels, so they are restricted to `[A-Za-z0-9_.-]{1,64}`: nothing that needs
//! escaping anywhere, and short enough that a client cannot make the device table expensive.
//! An id made only of dots is refused too: `.` and `..` are path segments that browsers, curl
//! and proxies resolve away (`/pump_push/..` becomes `/`), so such a device could never be
//! pushed to or watched reliably.

use std::borrow::Borrow;
use std::fmt;

pub const MAX_LEN: usize = 64;

/// The rule, worded for error messages.
pub const RULE: &str = "1 to 64 characters from A-Z a-z 0-9 _ . -, not only dots";

/// A device id that satisfies the rule above.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(String);

/// Why a candidate id was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidDeviceId {
    Empty,
    TooLong,
    BadCharacter,
    OnlyDots,
}

impl DeviceId {
    pub fn parse(candidate: &str) -> Result<DeviceId, InvalidDeviceId> {
        if candidate.is_empty() {
            return Err(InvalidDeviceId::Empty);
        }
        if candidate.len() > MAX_LEN {
            return Err(InvalidDeviceId::TooLong);
        }
        if !candidate.bytes().all(is_id_byte) {
            return Err(InvalidDeviceId::BadCharacter);
        }
        if candidate.bytes().all(|byte| byte == b'.') {
            return Err(InvalidDeviceId::OnlyDots);
        }
        Ok(DeviceId(candidate.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_id_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'-')
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Borrow<str> for DeviceId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InvalidDeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidDeviceId::Empty => write!(f, "device id is empty"),
            InvalidDeviceId::TooLong => write!(f, "device id is longer than {MAX_LEN} characters"),
            InvalidDeviceId::BadCharacter | InvalidDeviceId::OnlyDots => {
                write!(f, "device id must be {RULE}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_alphabet() {
        for id in [
            "cam_living",
            "a",
            "Front-Door.2",
            "0",
            ".a",
            "a..b",
            &"x".repeat(64),
        ] {
            assert_eq!(DeviceId::parse(id).unwrap().as_str(), id);
        }
    }

    #[test]
    fn refuses_everything_else() {
        assert_eq!(DeviceId::parse(""), Err(InvalidDeviceId::Empty));
        assert_eq!(
            DeviceId::parse(&"x".repeat(65)),
            Err(InvalidDeviceId::TooLong)
        );
        for id in ["a b", "../etc", "a/b", "cam\0", "é", "a%2F", "a?b", "a\r\n"] {
            assert_eq!(
                DeviceId::parse(id),
                Err(InvalidDeviceId::BadCharacter),
                "{id:?}"
            );
        }
        for id in [".", "..", "..."] {
            assert_eq!(
                DeviceId::parse(id),
                Err(InvalidDeviceId::OnlyDots),
                "{id:?}"
            );
        }
    }
}
