//! What the rest of the relay knows of its HTTPS port, in every build: which port it is, the
//! certificate authority a phone installs, and how many handshakes failed, by reason.
//!
//! The TLS code itself (`tls`, behind the `tls` feature) fills this in; the web pages and
//! `/metrics` only read it, so that they compile and answer sensibly in a build without TLS
//! (`/ca.crt` is then a 404 that says why).

use parking_lot::Mutex;

/// Why a TLS handshake did not finish. Scanners and clients that reject the relay's
/// certificate end up here; they are counted in `/metrics`, not logged at info level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeFailure {
    /// The first byte was not a TLS handshake record: plain HTTP, or a scanner's probe.
    NotTls,
    /// No complete handshake within `--request-timeout`.
    Timeout,
    /// The client closed the connection (or it was reset) before the handshake finished.
    Eof,
    /// The client does not trust the certificate (it sent `unknown_ca`, `bad_certificate` or
    /// `certificate_unknown`): a phone without the relay's authority installed.
    UnknownCa,
    /// The client sent another alert (no common protocol version, cipher, …).
    Alert,
    /// The client broke the protocol, or offered nothing the relay speaks.
    Protocol,
}

impl HandshakeFailure {
    /// Every reason, in the order `/metrics` lists them.
    pub const ALL: [HandshakeFailure; 6] = [
        HandshakeFailure::NotTls,
        HandshakeFailure::Timeout,
        HandshakeFailure::Eof,
        HandshakeFailure::UnknownCa,
        HandshakeFailure::Alert,
        HandshakeFailure::Protocol,
    ];

    /// The `reason` label in `/metrics`.
    pub fn label(self) -> &'static str {
        match self {
            HandshakeFailure::NotTls => "not_tls",
            HandshakeFailure::Timeout => "timeout",
            HandshakeFailure::Eof => "eof",
            HandshakeFailure::UnknownCa => "unknown_ca",
            HandshakeFailure::Alert => "alert",
            HandshakeFailure::Protocol => "protocol",
        }
    }
}

/// Handshakes finished and failed. Under a lock, as 32-bit MIPS has no 64-bit atomics.
#[derive(Default)]
pub struct HandshakeTally {
    counts: Mutex<Counts>,
}

#[derive(Default, Clone, Copy)]
pub struct Counts {
    pub completed: u64,
    pub failed: [u64; HandshakeFailure::ALL.len()],
}

impl HandshakeTally {
    pub fn completed(&self) {
        self.counts.lock().completed += 1;
    }

    pub fn failed(&self, why: HandshakeFailure) {
        let index = HandshakeFailure::ALL
            .iter()
            .position(|&reason| reason == why)
            .unwrap_or_default();
        self.counts.lock().failed[index] += 1;
    }

    pub fn counts(&self) -> Counts {
        *self.counts.lock()
    }
}

/// The relay's own certificate authority, as a phone installs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    /// The certificate in DER, served at `/ca.crt`.
    pub der: Vec<u8>,
    /// SHA-256 of `der`, as colon-separated upper-case hex, the way Android and Chrome show it.
    pub fingerprint: String,
}

/// The HTTPS side as the pages and `/metrics` see it.
pub struct Https {
    /// The port HTTPS listens on.
    pub port: u16,
    /// `None` when the certificate comes from `--tls-cert` (a public name needs no
    /// authority installed).
    pub authority: Option<Authority>,
    pub handshakes: std::sync::Arc<HandshakeTally>,
}
