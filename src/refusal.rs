//! Why a request was not served: one vocabulary for every layer.
//!
//! The connection layer refuses heads it cannot take (431, 505), the access check refuses
//! credentials (401), the router refuses URLs (404, 405), the relay refuses frames and devices
//! (413, 415, 503). All of them say it the same way: a [`Reason`], which decides the status
//! and the `reason` label of `streampump_requests_rejected_total`, and a one-line message for
//! the person with curl or the phone page that shows it. The answer is built from it in one
//! place (`http::response`), and counted in one place (`web::metrics`).

use std::borrow::Cow;
use std::fmt;

/// What kind of refusal, with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// 400: a head, URL, body or frame boundary that cannot be read.
    BadRequest,
    /// 401: missing or wrong credentials (the challenge rides along).
    Unauthorized,
    /// 403: deletion while it is disabled.
    Forbidden,
    /// 404: no such endpoint or device.
    NotFound,
    /// 405: the path exists, the method does not (the `Allow` list rides along).
    MethodNotAllowed,
    /// 406: a page asked for without gzip.
    NotAcceptable,
    /// 408: a request head that did not arrive within `--request-timeout`.
    Timeout,
    /// 410: a streaming push to a device deleted meanwhile.
    Gone,
    /// 413: a body over `--max-frame-bytes`.
    TooLarge,
    /// 414: a request line longer than the head buffer.
    UriTooLong,
    /// 415: a body that is not a complete JPEG.
    NotJpeg,
    /// 417: an `Expect` other than `100-continue`.
    ExpectationFailed,
    /// 431: a head over the buffer or with too many header lines.
    HeadTooLarge,
    /// 503: every `--max-connections` connection is open.
    ConnectionLimit,
    /// 503: `--max-devices` reached.
    DeviceLimit,
    /// 503: `--max-viewers` reached for the device.
    ViewerLimit,
    /// 503: no room in `--memory-budget` for the push, even after dropping expendable frames.
    MemoryBudget,
    /// 505: a protocol version other than HTTP/1.0 and HTTP/1.1.
    VersionNotSupported,
}

impl Reason {
    pub fn status(self) -> u16 {
        match self {
            Reason::BadRequest => 400,
            Reason::Unauthorized => 401,
            Reason::Forbidden => 403,
            Reason::NotFound => 404,
            Reason::MethodNotAllowed => 405,
            Reason::NotAcceptable => 406,
            Reason::Timeout => 408,
            Reason::Gone => 410,
            Reason::TooLarge => 413,
            Reason::UriTooLong => 414,
            Reason::NotJpeg => 415,
            Reason::ExpectationFailed => 417,
            Reason::HeadTooLarge => 431,
            Reason::ConnectionLimit
            | Reason::DeviceLimit
            | Reason::ViewerLimit
            | Reason::MemoryBudget => 503,
            Reason::VersionNotSupported => 505,
        }
    }

    /// The `reason` label in `/metrics`. Several reasons share a label where a dashboard would
    /// not tell them apart (a 403 is an access refusal like a 401).
    pub fn label(self) -> &'static str {
        match self {
            Reason::BadRequest | Reason::ExpectationFailed => "bad_request",
            Reason::Unauthorized | Reason::Forbidden => "unauthorized",
            Reason::NotFound => "not_found",
            Reason::MethodNotAllowed => "method_not_allowed",
            Reason::NotAcceptable => "not_acceptable",
            Reason::Timeout => "timeout",
            Reason::Gone => "gone",
            Reason::TooLarge => "too_large",
            Reason::UriTooLong | Reason::HeadTooLarge => "head_too_large",
            Reason::NotJpeg => "not_jpeg",
            Reason::ConnectionLimit => "connection_limit",
            Reason::DeviceLimit => "device_limit",
            Reason::ViewerLimit => "viewer_limit",
            Reason::MemoryBudget => "memory_budget",
            Reason::VersionNotSupported => "http_version",
        }
    }

    /// Every label, in the order `/metrics` lists them (each shown from the start, at 0).
    pub const LABELS: [&'static str; 15] = [
        "bad_request",
        "unauthorized",
        "not_found",
        "method_not_allowed",
        "not_acceptable",
        "timeout",
        "gone",
        "too_large",
        "head_too_large",
        "not_jpeg",
        "connection_limit",
        "device_limit",
        "viewer_limit",
        "memory_budget",
        "http_version",
    ];

    /// Whether the client is asked to come back later (`Retry-After`).
    pub fn is_temporary(self) -> bool {
        self.status() == 503
    }
}

/// A refused request: why, in one line, and what the answer must carry besides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: Reason,
    pub message: Cow<'static, str>,
    /// 405: the `Allow` header. 401: the `WWW-Authenticate` challenge.
    pub extra: Option<Extra>,
}

/// A header a refusal needs so that the client can do better next time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extra {
    Allow(&'static str),
    Challenge(&'static str),
}

impl Refusal {
    pub fn new(reason: Reason, message: impl Into<Cow<'static, str>>) -> Refusal {
        Refusal {
            reason,
            message: message.into(),
            extra: None,
        }
    }

    pub fn with(mut self, extra: Extra) -> Refusal {
        self.extra = Some(extra);
        self
    }

    pub fn status(&self) -> u16 {
        self.reason.status()
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status(), self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_is_listed_once() {
        let reasons = [
            Reason::BadRequest,
            Reason::Unauthorized,
            Reason::Forbidden,
            Reason::NotFound,
            Reason::MethodNotAllowed,
            Reason::NotAcceptable,
            Reason::Timeout,
            Reason::Gone,
            Reason::TooLarge,
            Reason::UriTooLong,
            Reason::NotJpeg,
            Reason::ExpectationFailed,
            Reason::HeadTooLarge,
            Reason::ConnectionLimit,
            Reason::DeviceLimit,
            Reason::ViewerLimit,
            Reason::MemoryBudget,
            Reason::VersionNotSupported,
        ];
        for reason in reasons {
            assert!(Reason::LABELS.contains(&reason.label()), "{reason:?}");
        }
        for (at, label) in Reason::LABELS.iter().enumerate() {
            assert!(!Reason::LABELS[at + 1..].contains(label), "{label}");
        }
        assert!(Reason::MemoryBudget.is_temporary());
        assert!(!Reason::TooLarge.is_temporary());
    }
}
