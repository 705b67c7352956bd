//! Answers: a status, headers that cannot carry a line break, and a body of known length.
//!
//! Every header goes through [`Headers::add`], which refuses a value holding CR, LF or any
//! other control character: text from a request (a device id, a path quoted in a 404, an
//! `Origin`) can never start a header line of its own or end the head early. Every answer
//! that is not the MJPEG stream has a `Content-Length`, so a kept-alive connection always
//! knows where it ends; nothing is ever sent chunked.

use std::fmt::Write as _;
use std::io;
use std::ops::Range;
use std::sync::Arc;

use crate::http::date;
use crate::http::head::Version;
use crate::http::input::Wire;
use crate::refusal::{Extra, Refusal};

/// Seconds a client is asked to wait after a 503.
pub const RETRY_AFTER_SECONDS: u32 = 5;

/// Header lines, each checked as it is added, rendered as `Name: value\r\n`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(String);

impl Headers {
    /// Adds a header. A value with a control character (CR, LF, NUL…) is dropped, with a
    /// debug line: sending it would let a request write the response.
    pub fn add(&mut self, name: &'static str, value: &str) {
        if value
            .bytes()
            .any(|byte| byte.is_ascii_control() && byte != b'\t')
        {
            log::debug!("dropped a {name} header holding a control character");
            return;
        }
        let _ = write!(self.0, "{name}: {value}\r\n");
    }

    pub fn extend(&mut self, other: &Headers) {
        self.0.push_str(&other.0);
    }

    /// The lines, each ending in CRLF.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What follows the head.
#[derive(Debug, Clone)]
pub enum Payload {
    Empty,
    Owned(Vec<u8>),
    Static(&'static [u8]),
    /// A range of a buffer shared with others (a frame), sent without a copy. The buffer is
    /// held until the answer is written, whatever else owns it (a frame keeps its memory
    /// charged until then).
    Shared(Arc<dyn SharedBytes>, Range<usize>),
}

/// A buffer others hold too, as [`Payload::Shared`] sends it.
pub trait SharedBytes: Send + Sync + std::fmt::Debug {
    fn bytes(&self) -> &[u8];
}

impl SharedBytes for Vec<u8> {
    fn bytes(&self) -> &[u8] {
        self
    }
}

impl Payload {
    fn bytes(&self) -> &[u8] {
        match self {
            Payload::Empty => &[],
            Payload::Owned(bytes) => bytes,
            Payload::Static(bytes) => bytes,
            Payload::Shared(bytes, range) => bytes.bytes().get(range.clone()).unwrap_or_default(),
        }
    }
}

/// A complete answer.
#[derive(Debug, Clone)]
pub struct Response {
    status: u16,
    headers: Headers,
    payload: Payload,
}

impl Response {
    pub fn new(status: u16, payload: Payload) -> Response {
        Response {
            status,
            headers: Headers::default(),
            payload,
        }
    }

    /// A plain-text answer with exactly `body`.
    pub fn text(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response::new(status, Payload::Owned(body.into()))
            .with_header("Content-Type", "text/plain; charset=utf-8")
    }

    /// The answer to a refusal: its one-line reason, newline-terminated for terminals, and
    /// the header it needs (`Allow`, `WWW-Authenticate`, `Retry-After`).
    pub fn refusal(refusal: &Refusal) -> Response {
        let mut response = Response::text(refusal.status(), format!("{}\n", refusal.message));
        match refusal.extra {
            Some(Extra::Allow(methods)) => response.add_header("Allow", methods),
            Some(Extra::Challenge(challenge)) => response.add_header("WWW-Authenticate", challenge),
            None => {}
        }
        if refusal.reason.is_temporary() {
            response.add_header("Retry-After", &RETRY_AFTER_SECONDS.to_string());
        }
        response
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    pub fn add_header(&mut self, name: &'static str, value: &str) {
        self.headers.add(name, value);
    }

    pub fn with_header(mut self, name: &'static str, value: &str) -> Response {
        self.add_header(name, value);
        self
    }

    pub fn add_headers(&mut self, headers: &Headers) {
        self.headers.extend(headers);
    }

    /// Writes the answer; for `HEAD` only its head. `keep_alive` says whether the connection
    /// stays open after it (decided by the connection, from the request and this answer).
    pub fn write_to(
        &self,
        wire: &dyn Wire,
        version: Version,
        head_only: bool,
        keep_alive: bool,
    ) -> io::Result<()> {
        let body = self.payload.bytes();
        let mut head = String::with_capacity(160 + self.headers.as_str().len());
        let _ = write!(
            head,
            "{} {} {}\r\nServer: streampump/{}\r\nDate: {}\r\n{}",
            version.as_str(),
            self.status,
            reason_phrase(self.status),
            env!("CARGO_PKG_VERSION"),
            date::now(),
            self.headers.as_str()
        );
        // 1xx and 204 answers carry no length (RFC 9110 §8.6).
        if self.status >= 200 && self.status != 204 {
            let _ = write!(head, "Content-Length: {}\r\n", body.len());
        }
        match (keep_alive, version) {
            (false, _) => head.push_str("Connection: close\r\n"),
            (true, Version::Http10) => head.push_str("Connection: keep-alive\r\n"),
            (true, Version::Http11) => {}
        }
        head.push_str("\r\n");
        // Small answers leave in one write (one TCP segment with TCP_NODELAY); a frame goes
        // out from its shared buffer as it is.
        let mut bytes = head.into_bytes();
        if head_only {
            return wire.write_all(&bytes);
        }
        if body.len() <= 16 * 1024 {
            bytes.extend_from_slice(body);
            return wire.write_all(&bytes);
        }
        wire.write_all(&bytes)?;
        wire.write_all(body)
    }
}

/// The reason phrase for each status the relay sends.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refusal::Reason;
    use parking_lot::Mutex;
    use std::net::Shutdown;
    use std::time::Instant;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<u8>>);

    impl Wire for Recorder {
        fn read_by(&self, _: &mut [u8], _: Instant) -> io::Result<usize> {
            Ok(0)
        }
        fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
            self.0.lock().extend_from_slice(bytes);
            Ok(())
        }
        fn shutdown(&self, _: Shutdown) {}
        fn abort(&self) {}
    }

    fn written(response: &Response, version: Version, head_only: bool, keep: bool) -> String {
        let wire = Recorder::default();
        response.write_to(&wire, version, head_only, keep).unwrap();
        let bytes = wire.0.lock().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn header_values_cannot_break_a_line() {
        let mut headers = Headers::default();
        headers.add("X-Ok", "a\tb");
        headers.add("X-Bad", "a\r\nSet-Cookie: x=1");
        headers.add("X-Bad", "a\nb");
        headers.add("X-Bad", "a\rb");
        headers.add("X-Bad", "a\0b");
        assert_eq!(headers.as_str(), "X-Ok: a\tb\r\n");
    }

    #[test]
    fn an_answer_has_its_length_and_connection_rules() {
        let response = Response::text(200, "OK");
        let text = written(&response, Version::Http11, false, true);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\nServer: streampump/"));
        assert!(text.contains("\r\nDate: "));
        assert!(text.contains("\r\nContent-Type: text/plain; charset=utf-8\r\n"));
        assert!(text.ends_with("\r\nContent-Length: 2\r\n\r\nOK"));
        let text = written(&response, Version::Http10, true, true);
        assert!(text.starts_with("HTTP/1.0 200 OK\r\n"));
        assert!(text.ends_with("Content-Length: 2\r\nConnection: keep-alive\r\n\r\n"));
        let text = written(&response, Version::Http11, false, false);
        assert!(text.ends_with("Connection: close\r\n\r\nOK"));
    }

    #[test]
    fn refusals_carry_what_the_client_needs() {
        let refusal = Refusal::new(Reason::DeviceLimit, "full");
        let text = written(&Response::refusal(&refusal), Version::Http11, false, true);
        assert!(text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
        assert!(text.contains("\r\nRetry-After: 5\r\n"));
        assert!(text.ends_with("\r\n\r\nfull\n"));
        let refusal = Refusal::new(Reason::MethodNotAllowed, "no").with(Extra::Allow("GET"));
        let text = written(&Response::refusal(&refusal), Version::Http11, false, true);
        assert!(text.contains("\r\nAllow: GET\r\n"));
        let no_content = written(
            &Response::new(204, Payload::Empty),
            Version::Http11,
            false,
            true,
        );
        assert!(!no_content.contains("Content-Length"));
    }

    #[test]
    fn a_large_shared_body_is_sent_whole() {
        let bytes: Arc<dyn SharedBytes> = Arc::new(vec![7u8; 40_000]);
        let response = Response::new(200, Payload::Shared(bytes, 5..39_005));
        let text = written(&response, Version::Http11, false, true);
        assert!(text.contains("Content-Length: 39000\r\n"));
        assert_eq!(text.split_once("\r\n\r\n").unwrap().1.len(), 39_000);
    }
}
