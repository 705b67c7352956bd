//! Building the short, non-streaming answers: plain-text reasons, JSON, and JPEG snapshots.
//!
//! Every refusal carries a one-line plain-text reason, so a person with curl (or a phone page
//! showing the relay's message) learns what to change. A snapshot is served from the shared
//! frame buffer through a reader, never copied into a new buffer first.

use std::io::{self, Cursor, Read};
use std::ops::Range;
use std::sync::Arc;

use tiny_http::{Header, Response, StatusCode};

use crate::mjpeg::{self, Part};
use crate::routes::Refusal;

/// Seconds a client is asked to wait after a 503.
pub const RETRY_AFTER_SECONDS: u32 = 5;

pub type TextResponse = Response<Cursor<Vec<u8>>>;

pub fn header(name: &str, value: &str) -> Header {
    // Names and values here are ASCII by construction: fixed strings, numbers, validated ids.
    Header::from_bytes(name.as_bytes(), value.as_bytes()).unwrap_or_else(|()| {
        Header::from_bytes(&b"X-Invalid-Header"[..], &b"1"[..])
            .unwrap_or_else(|()| unreachable!("static ASCII header"))
    })
}

fn with_header<R: Read>(response: Response<R>, name: &str, value: &str) -> Response<R> {
    response.with_header(header(name, value))
}

/// Adds headers decided per request (CORS) to any answer.
pub fn with_headers<R: Read>(mut response: Response<R>, headers: &[Header]) -> Response<R> {
    for extra in headers {
        response.add_header(extra.clone());
    }
    response
}

/// 401 with its challenge. The same words whatever was missing or wrong, and whether or not
/// the device exists.
pub fn unauthorized(challenge: &str) -> TextResponse {
    with_header(
        reason(401, "credentials required: a token or a login"),
        "WWW-Authenticate",
        challenge,
    )
}

/// A plain-text answer with exactly `body` (the reference answers a push with a bare `OK`).
pub fn text(status: u16, body: &str) -> TextResponse {
    let body = body.as_bytes().to_vec();
    let response = Response::from_data(body).with_status_code(StatusCode(status));
    with_header(response, "Content-Type", "text/plain; charset=utf-8")
}

/// A one-line plain-text reason, newline-terminated for terminals.
pub fn reason(status: u16, message: &str) -> TextResponse {
    text(status, &format!("{message}\n"))
}

/// The answer to a routing refusal (400, 404, 405 with `Allow`).
pub fn refusal(refusal: &Refusal) -> TextResponse {
    let response = reason(refusal.status, &refusal.reason);
    match refusal.allow {
        Some(allow) => with_header(response, "Allow", allow),
        None => response,
    }
}

/// 503 with `Retry-After`, for limits that free up by themselves.
pub fn unavailable(message: &str) -> TextResponse {
    with_header(
        reason(503, message),
        "Retry-After",
        &RETRY_AFTER_SECONDS.to_string(),
    )
}

/// `204` listing the methods a path accepts.
/// The same bytes on the wire as `Response::empty(204)`, but as the one body type most
/// answers use: each body type instantiates tiny_http's whole writer again (3 KB on MIPS).
pub fn options(allow: &str) -> TextResponse {
    let response = Response::from_data(Vec::new()).with_status_code(StatusCode(204));
    with_header(response, "Allow", allow)
}

/// A JSON document, never cached.
pub fn json(body: String) -> TextResponse {
    let response = Response::from_data(body.into_bytes());
    let response = with_header(response, "Content-Type", "application/json");
    no_cache(response)
}

/// Prometheus's text exposition format, never cached.
pub fn metrics(body: String) -> TextResponse {
    let response = Response::from_data(body.into_bytes());
    let response = with_header(
        response,
        "Content-Type",
        "text/plain; version=0.0.4; charset=utf-8",
    );
    no_cache(response)
}

/// The latest frame as `image/jpeg` with `Content-Length` (tiny_http would otherwise send
/// anything over 32 KiB chunked).
pub fn jpeg(part: &Part, age_ms: u64) -> Response<SharedBytes> {
    let (bytes, range) = part.shared_jpeg();
    let length = range.len();
    let response = Response::new(
        StatusCode(200),
        Vec::new(),
        SharedBytes::new(bytes, range),
        Some(length),
        None,
    )
    .with_chunked_threshold(usize::MAX);
    let response = with_header(response, "Content-Type", "image/jpeg");
    let response = with_header(response, "X-Frame-Age-Ms", &age_ms.to_string());
    no_cache(response)
}

fn no_cache<R: Read>(response: Response<R>) -> Response<R> {
    let response = with_header(response, "Cache-Control", mjpeg::CACHE_CONTROL);
    with_header(response, "Pragma", mjpeg::PRAGMA)
}

/// Reads a range of a shared buffer without copying it first.
pub struct SharedBytes {
    bytes: Arc<[u8]>,
    unread: Range<usize>,
}

impl SharedBytes {
    pub fn new(bytes: Arc<[u8]>, range: Range<usize>) -> Self {
        SharedBytes {
            bytes,
            unread: range,
        }
    }
}

impl Read for SharedBytes {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = self.bytes.get(self.unread.clone()).unwrap_or_default();
        let count = rest.len().min(buf.len());
        buf[..count].copy_from_slice(&rest[..count]);
        self.unread.start += count;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_bytes_reads_everything_once() {
        let mut reader = SharedBytes::new(Arc::from(&b"[hello]"[..]), 1..6);
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"hello");
        assert_eq!(reader.read(&mut [0; 4]).unwrap(), 0);
    }
}
