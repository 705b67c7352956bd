//! Which of the relay's ports an attack goes at: plain HTTP, or HTTPS (`--tls-listen`).
//!
//! Over HTTPS an attack speaks through loadgen's own TLS client ([`crate::http::secure`]),
//! trusting only the relay's own authority (`ca.crt` in its state directory) and verifying
//! `127.0.0.1` against the server certificate, so every byte of the attack reaches the
//! relay's HTTP layer through a real handshake and real records. The connection layer, its
//! limits and its timeouts are the same on both ports; what the HTTPS port adds is the
//! handshake (on the connection's own thread, within `--request-timeout`) and encryption of
//! every answer, and those are what the attacks over HTTPS put under load.
//!
//! The normal load (pushers and viewers) and the recovery probe stay on the plain port in
//! every trial: go2rtc, Home Assistant and ffmpeg read the plain port, so what an attack on
//! the HTTPS port must not disturb is exactly that, and the figures stay comparable row for
//! row with the same attack on the plain port. The relay's baseline is measured with its
//! HTTPS accept loop running, so it must come back to that, thread for thread.

use crate::http::Target;
use crate::support::Relay;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    Plain,
    Https,
}

impl Port {
    /// `args` with the HTTPS port on loopback when the attack goes at it.
    pub fn relay_args(self, mut args: Vec<String>) -> Vec<String> {
        if self == Port::Https {
            args.extend(["--tls-listen".to_string(), "127.0.0.1:0".to_string()]);
        }
        args
    }

    /// The report's title for an attack over this port.
    pub fn title(self, title: &str) -> String {
        match self {
            Port::Plain => title.to_string(),
            Port::Https => format!("{title} over HTTPS"),
        }
    }

    /// Where the attack connects on `relay`: its plain address, or its HTTPS address with the
    /// relay's authority as the only trusted one.
    pub fn target(self, relay: &Relay) -> Target {
        match self {
            Port::Plain => {
                Target::parse(&format!("http://{}", relay.addr)).expect("a loopback address")
            }
            Port::Https => {
                let addr = relay
                    .tls_addr
                    .expect("the relay was started with --tls-listen");
                let ca = relay.state_dir.join("ca.crt");
                Target::parse(&format!("https://{addr}"))
                    .and_then(|target| target.with_ca_file(&ca.to_string_lossy()))
                    .expect("the relay's authority is in its state directory")
            }
        }
    }
}

/// `target` without its TLS: raw TCP to the same port, for bytes that are not a TLS client's
/// (silence, garbage, a ClientHello that never goes further).
pub fn raw(target: &Target) -> Target {
    Target {
        tls: None,
        ..target.clone()
    }
}

/// The first flight of a real TLS client (its ClientHello, as rustls sends it to 127.0.0.1),
/// for handshakes that never go further.
pub fn client_hello() -> Vec<u8> {
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default versions")
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("an IP address");
    let mut client =
        rustls::ClientConnection::new(std::sync::Arc::new(config), name).expect("a client session");
    let mut hello = Vec::new();
    while client.wants_write() {
        client
            .write_tls(&mut hello)
            .expect("writing into a Vec cannot fail");
    }
    hello
}
