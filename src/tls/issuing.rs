//! Server certificates from the relay's own authority: issued for the host's names, kept in
//! the state directory, reused after a restart while they still fit.
//!
//! A certificate is valid for 397 days: Chrome and Apple refuse server certificates valid for
//! longer than 398 days (Chrome's root program, Apple's support note HT211025), and whether a
//! client applies that to a user-installed authority varies, so the relay stays under it. It
//! is renewed 30 days before its end, and at once when the host's names change. The key is
//! new with every certificate and stays in the state directory, readable by the relay only.
//!
//! `server.names` records what the stored certificate was issued for (the day it ends, then
//! one name per line), so that a restart can tell without parsing the certificate whether it
//! still fits.

use std::sync::Arc;

use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;

use crate::state::{Readers, StateDir};
use crate::tls::authority::Authority;
use crate::tls::{clock, TlsError};

pub const CERT_FILE: &str = "server.crt";
pub const KEY_FILE: &str = "server.key";
pub const NAMES_FILE: &str = "server.names";
/// Days a server certificate is valid (see the module docs).
const VALID_DAYS: u64 = 397;
/// Days before its end a certificate is renewed.
pub const RENEW_DAYS: u64 = 30;

/// A server certificate in use.
pub struct Issued {
    pub key: Arc<CertifiedKey>,
    pub names: Vec<String>,
    /// The day (since 1970-01-01) it stops being valid.
    pub ends: u64,
}

impl Issued {
    /// Whether it is time for a new one: a name it lacks, or its end is near. A name that went
    /// away (an address given up) is no reason: the certificate still names every way in, and
    /// routers keep it on flash, so it is not rewritten for nothing.
    pub fn is_stale(&self, names: &[String], today: u64) -> bool {
        names.iter().any(|name| !self.names.contains(name)) || today + RENEW_DAYS >= self.ends
    }
}

/// The stored certificate, if it was issued for exactly `names` and is not due for renewal.
pub fn reuse(state: &StateDir, names: &[String], today: u64) -> Option<Issued> {
    let record = String::from_utf8(state.read(NAMES_FILE).ok()??).ok()?;
    let mut lines = record.lines();
    let ends: u64 = lines.next()?.strip_prefix("ends ")?.parse().ok()?;
    let recorded: Vec<String> = lines.map(str::to_string).collect();
    let certificate = CertificateDer::from_pem_slice(&state.read(CERT_FILE).ok()??).ok()?;
    let key = PrivateKeyDer::from_pem_slice(&state.read(KEY_FILE).ok()??).ok()?;
    let issued = Issued {
        key: Arc::new(certified(vec![certificate], &key).ok()?),
        names: recorded,
        ends,
    };
    (!issued.is_stale(names, today)).then_some(issued)
}

/// A new certificate for `names`, signed by `authority` and stored in `state`.
pub fn issue(
    authority: &Authority,
    state: &StateDir,
    names: &[String],
    today: u64,
) -> Result<Issued, TlsError> {
    let key = KeyPair::generate().map_err(TlsError::issuing("a server key"))?;
    let mut params =
        CertificateParams::new(names.to_vec()).map_err(TlsError::issuing("the server names"))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        names.first().map_or("streampump", String::as_str),
    );
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let ends = today + VALID_DAYS;
    // From yesterday: a phone whose clock runs a little behind still accepts it.
    clock::set_validity(&mut params, today.saturating_sub(1), ends);
    let certificate = params
        .signed_by(&key, authority.issuer())
        .map_err(TlsError::issuing("the server certificate"))?;
    let mut record = format!("ends {ends}\n");
    for name in names {
        record.push_str(name);
        record.push('\n');
    }
    state.write_if_changed(KEY_FILE, key.serialize_pem().as_bytes(), Readers::Owner)?;
    state.write_if_changed(CERT_FILE, certificate.pem().as_bytes(), Readers::Everyone)?;
    state.write_if_changed(NAMES_FILE, record.as_bytes(), Readers::Everyone)?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok(Issued {
        key: Arc::new(certified(vec![certificate.der().clone()], &key_der)?),
        names: names.to_vec(),
        ends,
    })
}

/// A chain and its key, ready for rustls.
pub fn certified(
    chain: Vec<CertificateDer<'static>>,
    key: &PrivateKeyDer<'_>,
) -> Result<CertifiedKey, TlsError> {
    let signing_key = rustls::crypto::ring::sign::any_supported_type(key)
        .map_err(|error| TlsError::Broken(format!("unusable private key: {error}")))?;
    let certified = CertifiedKey::new(chain, signing_key);
    // A renewal caught between writing the key and the certificate would present a
    // certificate its key cannot sign for: refuse the pair, and try again at the next change.
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(error) => Err(TlsError::Broken(format!(
            "the key does not belong to the certificate: {error}"
        ))),
    }
}
