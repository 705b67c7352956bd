//! Fuzzes `RequestTarget::parse` and `percent_decode`, the first code to see a client's URL.
//!
//! Every request target reaches these functions exactly as the client typed it, so a panic
//! here would end a request handler on input anyone can send. Beyond "no panic", the target
//! checks the promises the rest of the relay builds on:
//! - decoding never makes text longer (each escape is three bytes in, one out), so a client
//!   cannot inflate memory through the URL;
//! - a parsed path still starts with `/`, and a target that starts with `/` is never refused
//!   as "not a path";
//! - `param` returns the first value given for a name, as the route code expects;
//! - text without escapes decodes to itself, and fully escaped text decodes back to the
//!   original, in both the path and the query mode.

#![no_main]

use libfuzzer_sys::fuzz_target;
use streampump::http::target::{percent_decode, BadTarget, RequestTarget};

/// The parameters the routes read.
const PARAMS: [&str; 4] = ["device_id", "fps", "advance_headers", "action"];

fuzz_target!(|data: &[u8]| {
    // The connection layer only hands over targets that are ASCII.
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };

    match RequestTarget::parse(raw) {
        Ok(target) => check_parsed(raw, &target),
        Err(BadTarget::NotAPath) => assert!(!raw.starts_with('/'), "{raw:?} refused as no path"),
        Err(_) => {}
    }

    for plus_is_space in [false, true] {
        check_decode(raw, plus_is_space);
    }
});

fn check_parsed(raw: &str, target: &RequestTarget) {
    assert!(
        target.path.starts_with('/'),
        "{raw:?} gave path {:?}",
        target.path
    );
    assert!(target.path.len() <= raw.len());
    for name in PARAMS {
        let first = target
            .query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str());
        assert_eq!(target.param(name), first, "{raw:?}: param {name}");
    }
    // Every decoded piece comes from a distinct part of the raw text.
    let decoded_len: usize = target.path.len()
        + target
            .query
            .iter()
            .map(|(key, value)| key.len() + value.len())
            .sum::<usize>();
    assert!(decoded_len <= raw.len(), "{raw:?} decoded to more bytes");
}

fn check_decode(text: &str, plus_is_space: bool) {
    let decoded = percent_decode(text, plus_is_space);
    if let Ok(decoded) = &decoded {
        assert!(decoded.len() <= text.len(), "{text:?} grew to {decoded:?}");
    }
    let has_escape = text.contains('%') || (plus_is_space && text.contains('+'));
    if !has_escape {
        assert_eq!(
            decoded.as_deref(),
            Ok(text),
            "{text:?} has nothing to decode"
        );
    }
    // Escaping every byte, alternating hex case, must decode back to the original text.
    let escaped = escape_all(text);
    assert_eq!(
        percent_decode(&escaped, plus_is_space).as_deref(),
        Ok(text),
        "{escaped:?} did not decode back"
    );
}

fn escape_all(text: &str) -> String {
    const UPPER: &[u8; 16] = b"0123456789ABCDEF";
    const LOWER: &[u8; 16] = b"0123456789abcdef";
    let mut escaped = String::with_capacity(text.len() * 3);
    for (index, byte) in text.bytes().enumerate() {
        let digits = if index % 2 == 0 { UPPER } else { LOWER };
        escaped.push('%');
        escaped.push(char::from(digits[usize::from(byte >> 4)]));
        escaped.push(char::from(digits[usize::from(byte & 0x0F)]));
    }
    escaped
}
