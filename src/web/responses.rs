//! The relay's short answers, built on `http::Response`: plain text, JSON, metrics, snapshots.
//!
//! A snapshot is served from the shared frame buffer, never copied into a new buffer first.

use crate::http::{Payload, Response};
use crate::relay::mjpeg::{self, Part};

/// A one-line plain-text answer, newline-terminated for terminals.
pub fn reason(status: u16, message: &str) -> Response {
    Response::text(status, format!("{message}\n"))
}

/// `204` listing the methods a path accepts.
pub fn options(allow: &str) -> Response {
    Response::new(204, Payload::Empty).with_header("Allow", allow)
}

/// A JSON document, never cached.
pub fn json(body: String) -> Response {
    no_cache(
        Response::new(200, Payload::Owned(body.into_bytes()))
            .with_header("Content-Type", "application/json"),
    )
}

/// An SVG picture (the dashboard's QR codes), never cached: its link depends on the relay's
/// settings and the host it was reached on.
pub fn svg(body: String) -> Response {
    no_cache(
        Response::new(200, Payload::Owned(body.into_bytes()))
            .with_header("Content-Type", "image/svg+xml"),
    )
}

/// Prometheus's text exposition format, never cached.
pub fn metrics(body: String) -> Response {
    no_cache(
        Response::new(200, Payload::Owned(body.into_bytes()))
            .with_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8"),
    )
}

/// The latest frame as `image/jpeg`, sent from the buffer viewers share.
pub fn jpeg(part: &Part, age_ms: u64) -> Response {
    let (bytes, range) = part.shared_jpeg();
    no_cache(
        Response::new(200, Payload::Shared(bytes, range))
            .with_header("Content-Type", "image/jpeg")
            .with_header("X-Frame-Age-Ms", &age_ms.to_string()),
    )
}

fn no_cache(response: Response) -> Response {
    response
        .with_header("Cache-Control", mjpeg::CACHE_CONTROL)
        .with_header("Pragma", mjpeg::PRAGMA)
}
