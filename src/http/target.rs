//! Splitting a raw HTTP request target into a decoded path and query parameters.
//!
//! The head parser hands the target over exactly as the client sent it: origin form
//! (`/live.mjpeg?device_id=a%5Fb`) or absolute form (`http://host:19999/live.mjpeg?...`), still
//! percent-encoded. Decoding happens here, once, and refuses what cannot be decoded into UTF-8,
//! so `%00`, `%2F` and friends reach the id check as the characters they stand for and are
//! refused there with a clear message.

use std::borrow::Cow;
use std::fmt;

/// A request target taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTarget {
    /// The path, percent-decoded.
    pub path: String,
    /// Query parameters in order, percent-decoded, `+` read as a space.
    pub query: Vec<(String, String)>,
}

/// Why a target could not be taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadTarget {
    /// A `%` not followed by two hex digits.
    BadPercentEscape,
    /// Decoded bytes that are not UTF-8.
    NotUtf8,
    /// Neither `/…` nor `http(s)://host/…`.
    NotAPath,
}

impl fmt::Display for BadTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BadTarget::BadPercentEscape => "malformed percent-escape in URL",
            BadTarget::NotUtf8 => "URL does not decode to UTF-8",
            BadTarget::NotAPath => "request target must be a path starting with /",
        })
    }
}

impl RequestTarget {
    pub fn parse(raw: &str) -> Result<RequestTarget, BadTarget> {
        let origin_form = strip_scheme_and_authority(raw);
        let origin_form = origin_form.as_ref();
        if !origin_form.starts_with('/') {
            return Err(BadTarget::NotAPath);
        }
        let without_fragment = origin_form.split('#').next().unwrap_or_default();
        let (raw_path, raw_query) = match without_fragment.split_once('?') {
            Some((path, query)) => (path, query),
            None => (without_fragment, ""),
        };
        let path = percent_decode(raw_path, false)?;
        let query = raw_query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                Ok((percent_decode(name, true)?, percent_decode(value, true)?))
            })
            .collect::<Result<Vec<_>, BadTarget>>()?;
        Ok(RequestTarget { path, query })
    }

    /// The first value of a query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// `http://host:port/x?y` → `/x?y`; an authority with no path means `/`, keeping any query
/// (`http://host?y` → `/?y`).
fn strip_scheme_and_authority(raw: &str) -> Cow<'_, str> {
    let has_scheme = |scheme: &str| {
        raw.as_bytes()
            .get(..scheme.len())
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case(scheme.as_bytes()))
    };
    // Both schemes are ASCII, so the slices below fall on character boundaries.
    let after_scheme = if has_scheme("http://") {
        &raw[7..]
    } else if has_scheme("https://") {
        &raw[8..]
    } else {
        return Cow::Borrowed(raw);
    };
    match after_scheme.find(['/', '?', '#']) {
        Some(at) if after_scheme.as_bytes()[at] == b'/' => Cow::Borrowed(&after_scheme[at..]),
        Some(at) => Cow::Owned(format!("/{}", &after_scheme[at..])),
        None => Cow::Borrowed("/"),
    }
}

/// Decodes `%XX` escapes (and `+` as space in query components).
pub fn percent_decode(text: &str, plus_is_space: bool) -> Result<String, BadTarget> {
    if !text.contains(['%', '+']) {
        return Ok(text.to_owned());
    }
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'%' => {
                let high = bytes.get(at + 1).and_then(|b| hex_value(*b));
                let low = bytes.get(at + 2).and_then(|b| hex_value(*b));
                match (high, low) {
                    (Some(high), Some(low)) => decoded.push(high << 4 | low),
                    _ => return Err(BadTarget::BadPercentEscape),
                }
                at += 3;
            }
            b'+' if plus_is_space => {
                decoded.push(b' ');
                at += 1;
            }
            other => {
                decoded.push(other);
                at += 1;
            }
        }
    }
    String::from_utf8(decoded).map_err(|_| BadTarget::NotUtf8)
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_decodes_origin_form() {
        let target = RequestTarget::parse("/live.mjpeg?device_id=cam%5F01&fps=5&x").unwrap();
        assert_eq!(target.path, "/live.mjpeg");
        assert_eq!(target.param("device_id"), Some("cam_01"));
        assert_eq!(target.param("fps"), Some("5"));
        assert_eq!(target.param("x"), Some(""));
        assert_eq!(target.param("missing"), None);
    }

    #[test]
    fn first_occurrence_of_a_parameter_wins() {
        let target = RequestTarget::parse("/s?device_id=a&device_id=b").unwrap();
        assert_eq!(target.param("device_id"), Some("a"));
    }

    #[test]
    fn accepts_absolute_form_and_drops_fragments() {
        let target = RequestTarget::parse("http://relay:19999/snapshot.jpg?device_id=a#x").unwrap();
        assert_eq!(target.path, "/snapshot.jpg");
        assert_eq!(target.param("device_id"), Some("a"));
        assert_eq!(RequestTarget::parse("HTTP://relay").unwrap().path, "/");
        let no_path = RequestTarget::parse("http://relay?action=stream").unwrap();
        assert_eq!(no_path.path, "/");
        assert_eq!(no_path.param("action"), Some("stream"));
        // A multi-byte character where the scheme would end is not a scheme.
        assert!(RequestTarget::parse("http://é/x").is_ok());
        assert_eq!(
            RequestTarget::parse("/é?a=1").unwrap().param("a"),
            Some("1")
        );
    }

    #[test]
    fn plus_is_a_space_only_in_the_query() {
        let target = RequestTarget::parse("/a+b?q=c+d").unwrap();
        assert_eq!(target.path, "/a+b");
        assert_eq!(target.param("q"), Some("c d"));
    }

    #[test]
    fn decodes_tricks_so_the_id_check_can_refuse_them() {
        let target = RequestTarget::parse("/pump_push/..%2F..%2Fetc").unwrap();
        assert_eq!(target.path, "/pump_push/../../etc");
        let target = RequestTarget::parse("/s?device_id=a%00").unwrap();
        assert_eq!(target.param("device_id"), Some("a\0"));
    }

    #[test]
    fn refuses_what_cannot_be_decoded() {
        assert_eq!(
            RequestTarget::parse("/a%"),
            Err(BadTarget::BadPercentEscape)
        );
        assert_eq!(
            RequestTarget::parse("/a%G1"),
            Err(BadTarget::BadPercentEscape)
        );
        assert_eq!(RequestTarget::parse("/a?b=%FF"), Err(BadTarget::NotUtf8));
        assert_eq!(RequestTarget::parse("*"), Err(BadTarget::NotAPath));
        assert_eq!(RequestTarget::parse(""), Err(BadTarget::NotAPath));
    }
}
