//! A request head: parsed by `httparse` from the connection's buffer, checked, and kept.
//!
//! `httparse` does the byte-level work without allocating: the request line, header names and
//! values, and only HTTP/1.0 and HTTP/1.1 (anything else is `Error::Version`). What it leaves
//! to the server is checked here, so that every handler sees a head that is sane:
//! - the whole head fits [`MAX_HEAD_BYTES`] and [`MAX_HEADERS`] lines, or it is a 431 (a 414
//!   when the request line alone is longer), as OpenWrt's uhttpd does;
//! - the target is ASCII (a browser percent-encodes everything else), or it is a 400 rather
//!   than a URL quietly mangled on its way to a device id;
//! - an HTTP/1.1 request carries exactly one `Host` (RFC 9112 §3.2), any request at most one.
//!
//! The parsed head is copied out of the buffer (a few hundred bytes, once per request) so that
//! the buffer can go on to read the body while the handler looks at the headers.

use std::ops::Range;

use crate::refusal::{Reason, Refusal};

/// Largest request head accepted, request line and headers together. Phones, go2rtc, ffmpeg
/// and browsers on a LAN send a few hundred bytes; a long token is 256.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Most header lines accepted in one head.
pub const MAX_HEADERS: usize = 64;

/// The protocol version of a request, which its answer repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// A parsed, checked request head.
#[derive(Debug, Clone)]
pub struct Head {
    bytes: Box<[u8]>,
    method: Range<usize>,
    target: Range<usize>,
    version: Version,
    headers: Vec<(Range<usize>, Range<usize>)>,
}

impl Head {
    /// Parses a head at the start of `buffer`. `Ok(None)` while it is incomplete and the
    /// buffer still has room; `Ok(Some((head, length)))` once the blank line is in.
    pub fn parse(buffer: &[u8]) -> Result<Option<(Head, usize)>, Refusal> {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut slots);
        let length = match request.parse(buffer) {
            Ok(httparse::Status::Complete(length)) => length,
            Ok(httparse::Status::Partial) if buffer.len() >= MAX_HEAD_BYTES => {
                return Err(too_large(buffer));
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(error) => return Err(refusal_for(error)),
        };
        let (Some(method), Some(target), Some(minor)) =
            (request.method, request.path, request.version)
        else {
            return Err(Refusal::new(Reason::BadRequest, "incomplete request line"));
        };
        if !target.is_ascii() {
            return Err(Refusal::new(
                Reason::BadRequest,
                "the URL has characters that are not ASCII; percent-encode them",
            ));
        }
        let version = if minor == 0 {
            Version::Http10
        } else {
            Version::Http11
        };
        let hosts = request
            .headers
            .iter()
            .filter(|header| header.name.eq_ignore_ascii_case("Host"))
            .count();
        if hosts > 1 || (hosts == 0 && version == Version::Http11) {
            return Err(Refusal::new(
                Reason::BadRequest,
                "an HTTP/1.1 request needs exactly one Host header",
            ));
        }
        // Every slice httparse returns lies within `buffer`, so offsets are kept instead of
        // the slices, and the head is copied out of the buffer once.
        let base = buffer.as_ptr() as usize;
        let span = |slice: &[u8]| {
            let start = slice.as_ptr() as usize - base;
            start..start + slice.len()
        };
        let head = Head {
            method: span(method.as_bytes()),
            target: span(target.as_bytes()),
            version,
            headers: request
                .headers
                .iter()
                .map(|header| (span(header.name.as_bytes()), span(header.value)))
                .collect(),
            bytes: buffer[..length].into(),
        };
        Ok(Some((head, length)))
    }

    pub fn method(&self) -> &str {
        self.text(self.method.clone()).unwrap_or_default()
    }

    /// The request target exactly as sent (origin or absolute form, still percent-encoded).
    pub fn target(&self) -> &str {
        self.text(self.target.clone()).unwrap_or_default()
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// The value of the first header called `name` (any case), if it is text.
    pub fn header<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.values(name)
            .next()
            .and_then(|value| std::str::from_utf8(value).ok())
    }

    /// Every value of the headers called `name` (any case), as sent.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(key, _)| self.bytes[key.clone()].eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, value)| &self.bytes[value.clone()])
    }

    /// Whether a header called `name` lists `token` among its comma-separated values.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.values(name).any(|value| {
            value
                .split(|&byte| byte == b',')
                .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    }

    /// Whether the client wants the connection kept after this request: HTTP/1.1 unless it
    /// says `close`, HTTP/1.0 only if it says `keep-alive`.
    pub fn wants_keep_alive(&self) -> bool {
        match self.version {
            Version::Http11 => !self.has_token("Connection", "close"),
            Version::Http10 => self.has_token("Connection", "keep-alive"),
        }
    }

    fn text(&self, range: Range<usize>) -> Option<&str> {
        std::str::from_utf8(&self.bytes[range]).ok()
    }
}

/// A full buffer without a blank line: the request line alone is too long (414), or the
/// headers are (431).
fn too_large(buffer: &[u8]) -> Refusal {
    if buffer.contains(&b'\n') {
        Refusal::new(
            Reason::HeadTooLarge,
            format!("request head over {MAX_HEAD_BYTES} bytes"),
        )
    } else {
        Refusal::new(
            Reason::UriTooLong,
            format!("request line over {MAX_HEAD_BYTES} bytes"),
        )
    }
}

fn refusal_for(error: httparse::Error) -> Refusal {
    let (reason, message) = match error {
        httparse::Error::Version => (
            Reason::VersionNotSupported,
            "only HTTP/1.0 and HTTP/1.1 are served here",
        ),
        httparse::Error::TooManyHeaders => (Reason::HeadTooLarge, "more than 64 header lines"),
        httparse::Error::HeaderName => (Reason::BadRequest, "malformed header name"),
        httparse::Error::HeaderValue => (Reason::BadRequest, "malformed header value"),
        httparse::Error::NewLine => (Reason::BadRequest, "malformed line ending in the head"),
        httparse::Error::Token => (
            Reason::BadRequest,
            "malformed request line (method, URL or spaces)",
        ),
        _ => (Reason::BadRequest, "malformed request head"),
    };
    Refusal::new(reason, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Option<(Head, usize)>, Refusal> {
        Head::parse(text.as_bytes())
    }

    fn status(text: &str) -> u16 {
        parse(text).unwrap_err().status()
    }

    #[test]
    fn a_complete_head_is_parsed_and_what_follows_is_left() {
        let text = "POST /pump_push/cam HTTP/1.1\r\nHost: relay\r\ncontent-LENGTH: 3\r\n\
                    Connection: keep-alive, Upgrade\r\n\r\nabc";
        let (head, length) = parse(text).unwrap().unwrap();
        assert_eq!(&text[length..], "abc");
        assert_eq!(head.method(), "POST");
        assert_eq!(head.target(), "/pump_push/cam");
        assert_eq!(head.version(), Version::Http11);
        assert_eq!(head.header("Content-Length"), Some("3"));
        assert_eq!(head.header("X-Missing"), None);
        assert!(head.has_token("connection", "upgrade"));
        assert!(head.wants_keep_alive());
    }

    #[test]
    fn partial_heads_wait_for_more() {
        assert!(parse("GET /healthz HTTP/1.1\r\nHost: a\r\n")
            .unwrap()
            .is_none());
        assert!(parse("GE").unwrap().is_none());
        assert!(parse("").unwrap().is_none());
    }

    #[test]
    fn connection_rules_follow_the_version() {
        let keep = |text: &str| parse(text).unwrap().unwrap().0.wants_keep_alive();
        assert!(!keep(
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        ));
        assert!(!keep("GET / HTTP/1.0\r\n\r\n"));
        assert!(keep("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    }

    #[test]
    fn bad_heads_get_their_status() {
        assert_eq!(status("GET / HTTP/2.0\r\n\r\n"), 505);
        assert_eq!(status("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 505);
        assert_eq!(status("GET / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400);
        assert_eq!(status("GET /caf\u{e9} HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
        assert_eq!(status("\u{16}\u{3}\u{1}\u{2}\u{0}\u{1}"), 400);
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("X-{i}: y\r\n"))
            .collect();
        assert_eq!(
            status(&format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n")),
            431
        );
    }

    #[test]
    fn a_full_buffer_without_a_blank_line_is_too_large() {
        let long_header = format!(
            "GET / HTTP/1.1\r\nHost: a\r\nX-Long: {}",
            "y".repeat(MAX_HEAD_BYTES)
        );
        assert_eq!(status(&long_header[..MAX_HEAD_BYTES]), 431);
        let long_line = format!("GET /{} HTTP/1.1", "y".repeat(MAX_HEAD_BYTES));
        assert_eq!(status(&long_line[..MAX_HEAD_BYTES]), 414);
    }
}
