//! How a phone is doing, as its push page reports it with a push: battery, charging, whether
//! the page is visible and holds its wake lock, the camera's real capture size, encode time,
//! frames it skipped, its uptime, its browser, and what the camera cannot do.
//!
//! The report rides in one request header of a push, `X-Streampump-Health`, as
//! `key=value` pairs separated by `;` (`battery=14;charging=0;visible=1;capture=1280x720`).
//! A header costs the phone no extra request, and the page sends it only every few seconds.
//! Reading is lenient in one way only: a key the relay does not know, or a value out of range,
//! is left out (an older relay must not refuse a newer page's pushes), but nothing outside
//! the documented ranges is ever stored, and a header over [`MAX_HEADER_BYTES`] is ignored
//! whole.

use std::fmt::Write as _;

/// Longest health header read; a real report is about 150 bytes.
pub const MAX_HEADER_BYTES: usize = 512;
/// Longest browser name kept.
const MAX_BROWSER_CHARS: usize = 40;

/// What a camera could not do of what its settings asked (`unsupported=torch,zoom`).
pub const CAPABILITIES: [&str; 2] = ["torch", "zoom"];

/// One report. Every field is optional: browsers differ in what they tell a page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// Battery level in percent.
    pub battery: Option<u8>,
    pub charging: Option<bool>,
    pub visible: Option<bool>,
    pub wake_lock: Option<bool>,
    /// The screen is blacked out by the page's dim mode.
    pub dimmed: Option<bool>,
    /// The camera's real capture size, which may differ from what was asked.
    pub capture: Option<(u16, u16)>,
    pub encode_ms: Option<u32>,
    /// Frames the page did not send because the previous push was still in flight.
    pub skipped: Option<u32>,
    pub uptime_s: Option<u32>,
    pub browser: Option<String>,
    /// Bits of [`CAPABILITIES`] the camera lacks.
    pub unsupported: u8,
}

impl Health {
    /// Reads a header value; `None` if it is too long or holds nothing the relay knows.
    pub fn parse(header: &str) -> Option<Health> {
        if header.len() > MAX_HEADER_BYTES {
            return None;
        }
        let mut health = Health::default();
        let mut known = false;
        for pair in header.split(';') {
            let Some((key, value)) = pair.split_once('=') else {
                continue;
            };
            let value = value.trim();
            known |= match key.trim() {
                "battery" => set(&mut health.battery, number(value, 100).map(|n| n as u8)),
                "charging" => set(&mut health.charging, flag(value)),
                "visible" => set(&mut health.visible, flag(value)),
                "wakelock" => set(&mut health.wake_lock, flag(value)),
                "dimmed" => set(&mut health.dimmed, flag(value)),
                "capture" => set(
                    &mut health.capture,
                    value.split_once('x').and_then(|(w, h)| {
                        Some((number(w, 16384)? as u16, number(h, 16384)? as u16))
                    }),
                ),
                "encode_ms" => set(&mut health.encode_ms, number(value, 600_000)),
                "skipped" => set(&mut health.skipped, number(value, u32::MAX)),
                "uptime" => set(&mut health.uptime_s, number(value, u32::MAX)),
                "browser" => set(
                    &mut health.browser,
                    Some(value)
                        .filter(|v| {
                            !v.is_empty()
                                && v.len() <= MAX_BROWSER_CHARS
                                && v.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
                        })
                        .map(str::to_string),
                ),
                "unsupported" => {
                    for word in value.split(',') {
                        if let Some(bit) = CAPABILITIES.iter().position(|c| *c == word.trim()) {
                            health.unsupported |= 1 << bit;
                        }
                    }
                    true
                }
                _ => false,
            };
        }
        known.then_some(health)
    }

    /// The report as JSON members (without braces), for `/api/devices`.
    pub fn push_json(&self, json: &mut String) {
        let optional_bool =
            |value: Option<bool>| value.map_or("null".to_string(), |v| v.to_string());
        let optional_number =
            |value: Option<u32>| value.map_or("null".to_string(), |v| v.to_string());
        let _ = write!(
            json,
            "\"battery\":{},\"charging\":{},\"visible\":{},\"wake_lock\":{},\"dimmed\":{},\
             \"capture_width\":{},\"capture_height\":{},\"encode_ms\":{},\"skipped\":{},\
             \"page_uptime_s\":{},\"browser\":",
            optional_number(self.battery.map(u32::from)),
            optional_bool(self.charging),
            optional_bool(self.visible),
            optional_bool(self.wake_lock),
            optional_bool(self.dimmed),
            optional_number(self.capture.map(|c| u32::from(c.0))),
            optional_number(self.capture.map(|c| u32::from(c.1))),
            optional_number(self.encode_ms),
            optional_number(self.skipped),
            optional_number(self.uptime_s),
        );
        match &self.browser {
            Some(browser) => crate::text::json::push_string(json, browser),
            None => json.push_str("null"),
        }
        json.push_str(",\"unsupported\":[");
        let mut first = true;
        for (bit, name) in CAPABILITIES.iter().enumerate() {
            if self.unsupported & (1 << bit) != 0 {
                if !first {
                    json.push(',');
                }
                first = false;
                let _ = write!(json, "\"{name}\"");
            }
        }
        json.push(']');
    }
}

fn set<T>(field: &mut Option<T>, value: Option<T>) -> bool {
    let known = value.is_some();
    if known {
        *field = value;
    }
    known
}

fn number(text: &str, max: u32) -> Option<u32> {
    if text.is_empty() || text.len() > 10 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u64>()
        .ok()
        .filter(|&n| n <= u64::from(max))
        .map(|n| n as u32)
}

fn flag(text: &str) -> Option<bool> {
    match text {
        "1" => Some(true),
        "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_report_is_read() {
        let health = Health::parse(
            "battery=14;charging=0;visible=1;wakelock=1;dimmed=0;capture=1280x720;encode_ms=12;\
             skipped=3;uptime=3600;browser=Chrome 120;unsupported=torch,zoom",
        )
        .unwrap();
        assert_eq!(health.battery, Some(14));
        assert_eq!(health.charging, Some(false));
        assert_eq!(health.capture, Some((1280, 720)));
        assert_eq!(health.browser.as_deref(), Some("Chrome 120"));
        assert_eq!(health.unsupported, 0b11);
        let mut json = String::new();
        health.push_json(&mut json);
        assert!(json.contains("\"battery\":14,\"charging\":false"), "{json}");
        assert!(
            json.ends_with("\"unsupported\":[\"torch\",\"zoom\"]"),
            "{json}"
        );
    }

    #[test]
    fn garbage_is_left_out_and_nothing_out_of_range_is_kept() {
        let health =
            Health::parse("battery=140;charging=yes;capture=12x;visible=1;x=1;;=;browser=\u{7f}")
                .unwrap();
        assert_eq!(health.battery, None);
        assert_eq!(health.charging, None);
        assert_eq!(health.capture, None);
        assert_eq!(health.browser, None);
        assert_eq!(health.visible, Some(true));
        assert_eq!(Health::parse("nothing=1;at all"), None);
        assert_eq!(Health::parse(&"battery=1;".repeat(100)), None);
        assert_eq!(Health::parse("battery=-1"), None);
        assert_eq!(Health::parse("battery=+5"), None);
    }
}
