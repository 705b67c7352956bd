//! HTTPS on a port of its own, so that a phone's browser gives the push page its camera
//! (Chrome allows `getUserMedia` only in a secure context).
//!
//! Built only with the `tls` feature (on by default; the plain MIPS build leaves it out for
//! flash). rustls with its ring provider terminates TLS on each connection's own thread
//! (`wire`); under it the connection layer, its limits and timeouts, and the relay's service
//! run exactly as on the plain port. The certificate comes from `--tls-cert`/`--tls-key`, or
//! from the relay's own authority (`authority`), which issues one for every name of the host
//! (`names`, `issuing`); `certificates` swaps it when the files or the names change.
//!
//! TLS 1.3 only: every client the relay serves over HTTPS speaks it (Chrome on Android since
//! version 70, curl and ffmpeg through OpenSSL 1.1.1 or later), and leaving TLS 1.2 out saves
//! flash on a router (see docs/https.md for the measured size). Plain HTTP stays on its own
//! port for older clients.

pub mod authority;
pub mod certificates;
mod clock;
pub mod issuing;
pub mod names;
pub mod wire;

use std::fmt;
use std::io;
use std::sync::Arc;

use rustls::server::ServerConfig;
use rustls::ServerConnection;

use crate::config::TlsSettings;
use crate::http::accept::Transport;
use crate::http::input::Wire;
use crate::http::socket::Socket;
use crate::https::{Authority as PublishedAuthority, HandshakeTally};
use crate::state::StateDir;
use certificates::Certificates;
use wire::TlsWire;

/// Why HTTPS could not be set up.
#[derive(Debug)]
pub enum TlsError {
    State(io::Error),
    Issuing(&'static str, rcgen::Error),
    Broken(String),
    Rustls(rustls::Error),
}

impl TlsError {
    fn issuing(what: &'static str) -> impl FnOnce(rcgen::Error) -> TlsError {
        move |error| TlsError::Issuing(what, error)
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::State(error) => write!(f, "{error}"),
            TlsError::Issuing(what, error) => write!(f, "cannot make {what}: {error}"),
            TlsError::Broken(message) => f.write_str(message),
            TlsError::Rustls(error) => write!(f, "cannot set up TLS: {error}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// Whether this CPU encrypts faster with ChaCha20-Poly1305 than with AES-GCM: everywhere but
/// x86_64 and aarch64, where ring uses the CPU's AES instructions.
const PREFER_CHACHA: bool = !cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));

/// ring's TLS 1.3 cipher suites, ChaCha20 first where [`PREFER_CHACHA`].
fn provider() -> rustls::crypto::CryptoProvider {
    let mut provider = rustls::crypto::ring::default_provider();
    if PREFER_CHACHA {
        provider.cipher_suites.sort_by_key(|suite| {
            suite.suite() != rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
        });
    }
    provider
}

/// The HTTPS side of the relay: its rustls configuration, certificates and counts.
pub struct Tls {
    config: Arc<ServerConfig>,
    certificates: Arc<Certificates>,
    tally: Arc<HandshakeTally>,
    authority: Option<PublishedAuthority>,
}

impl Tls {
    /// Loads or makes the certificate; nothing listens yet.
    pub fn new(settings: &TlsSettings, state: &StateDir) -> Result<Tls, TlsError> {
        let (certificates, authority) = Certificates::start(settings, state)?;
        let certificates = Arc::new(certificates);
        let provider = Arc::new(provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Rustls)?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&certificates) as Arc<_>);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        // Where the CPU has no AES instructions for ring to use (MIPS, 32-bit ARM), ChaCha20
        // is several times cheaper than AES-GCM: the relay's order decides there.
        config.ignore_client_order = PREFER_CHACHA;
        Ok(Tls {
            config: Arc::new(config),
            certificates,
            tally: Arc::new(HandshakeTally::default()),
            authority,
        })
    }

    pub fn tally(&self) -> &Arc<HandshakeTally> {
        &self.tally
    }

    pub fn authority(&self) -> Option<&PublishedAuthority> {
        self.authority.as_ref()
    }

    /// Picks up renewed files or new host names (housekeeping, every second).
    pub fn refresh(&self) {
        self.certificates.refresh();
    }

    /// What the certificate is, for the start-up log line.
    pub fn describe(&self) -> String {
        match self.certificates.names() {
            Some(names) => format!("own authority, for {}", names.join(", ")),
            None => "given certificate".to_string(),
        }
    }
}

impl Transport for Tls {
    fn wire(&self, socket: Socket) -> Option<Arc<dyn Wire>> {
        match ServerConnection::new(Arc::clone(&self.config)) {
            Ok(connection) => Some(Arc::new(TlsWire::new(
                socket,
                connection,
                Arc::clone(&self.tally),
            ))),
            Err(error) => {
                log::warn!("cannot start a TLS session: {error}");
                None
            }
        }
    }

    fn answers_in_plain_text(&self) -> bool {
        false
    }
}
