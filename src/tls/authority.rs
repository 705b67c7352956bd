//! The relay's own certificate authority: made once, at first start, in the state directory,
//! and installed once on each phone (`/ca.crt`, the set-up page).
//!
//! A phone that trusts it accepts every server certificate the relay issues later, for every
//! address the relay will ever have, so a new address from DHCP needs nothing on the phone.
//! The authority may only sign certificates for the relay itself in practice, but X.509 name
//! constraints would have to name the addresses in advance, which is the one thing not known;
//! the key therefore stays on the relay, readable by its user only (`ca.key`, 0600).
//!
//! Keys are ECDSA P-256: small certificates, fast handshakes on a router's CPU, and accepted by
//! every client that matters (Android since 4.0, curl, ffmpeg, Chrome). The authority is valid
//! for twenty years: its validity is not capped by browsers for a user-installed root, and
//! installing it again on every phone is the one chore this design exists to avoid.
//!
//! Only the key and the certificate are stored. The issuer's name is derived from the key
//! (`streampump CA` and the first bytes of the key's SHA-256), so the authority can sign
//! again after a restart without parsing its own certificate back.

use std::io;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use crate::https;
use crate::state::{Readers, StateDir};
use crate::tls::clock;
use crate::tls::TlsError;

pub const KEY_FILE: &str = "ca.key";
pub const CERT_FILE: &str = "ca.crt";
/// Twenty years.
const VALID_DAYS: u64 = 20 * 365;

pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    certificate: CertificateDer<'static>,
}

impl Authority {
    /// The authority in `state`, made there first if there is none.
    /// Returns whether it was made now.
    pub fn load_or_create(state: &StateDir) -> Result<(Authority, bool), TlsError> {
        let key = state.read(KEY_FILE).map_err(TlsError::State)?;
        let certificate = state.read(CERT_FILE).map_err(TlsError::State)?;
        if let (Some(key), Some(certificate)) = (key, certificate) {
            return Ok((Authority::load(state, &key, &certificate)?, false));
        }
        let key = KeyPair::generate().map_err(TlsError::issuing("a key for the authority"))?;
        let mut params = authority_params(&key);
        let today = clock::days_now();
        clock::set_validity(&mut params, today.saturating_sub(1), today + VALID_DAYS);
        let certificate = params
            .self_signed(&key)
            .map_err(TlsError::issuing("the authority's certificate"))?;
        // The key first: a certificate without its key would be useless at the next start.
        state
            .write_if_changed(KEY_FILE, key.serialize_pem().as_bytes(), Readers::Owner)
            .map_err(TlsError::State)?;
        state
            .write_if_changed(CERT_FILE, certificate.pem().as_bytes(), Readers::Everyone)
            .map_err(TlsError::State)?;
        let authority = Authority {
            certificate: certificate.der().clone(),
            issuer: Issuer::new(params, key),
        };
        Ok((authority, true))
    }

    fn load(state: &StateDir, key: &[u8], certificate: &[u8]) -> Result<Authority, TlsError> {
        let broken = |what: &str| {
            TlsError::Broken(format!(
                "{what} in {state} is unreadable; move {KEY_FILE} and {CERT_FILE} away to \
                 make a new authority (phones will need the new one installed)"
            ))
        };
        let key = std::str::from_utf8(key)
            .ok()
            .and_then(|pem| KeyPair::from_pem(pem).ok())
            .ok_or_else(|| broken(KEY_FILE))?;
        let certificate =
            CertificateDer::from_pem_slice(certificate).map_err(|_| broken(CERT_FILE))?;
        Ok(Authority {
            issuer: Issuer::new(authority_params(&key), key),
            certificate,
        })
    }

    pub fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }

    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.certificate
    }

    /// The certificate as a phone installs it, with its fingerprint.
    pub fn published(&self) -> https::Authority {
        let digest = ring::digest::digest(&ring::digest::SHA256, self.certificate.as_ref());
        https::Authority {
            der: self.certificate.to_vec(),
            fingerprint: colon_hex(digest.as_ref()),
        }
    }
}

/// What the authority's certificate says, the same each time for the same key.
fn authority_params(key: &KeyPair) -> CertificateParams {
    let mut params = CertificateParams::default();
    let digest = ring::digest::digest(&ring::digest::SHA256, key.public_key_raw());
    let tag: String = digest.as_ref()[..4]
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("streampump CA {tag}"));
    params
        .distinguished_name
        .push(DnType::OrganizationName, "streampump");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// `AB:CD:…`, as certificate viewers show fingerprints.
fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl From<io::Error> for TlsError {
    fn from(error: io::Error) -> TlsError {
        TlsError::State(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_read_like_certificate_viewers_show_them() {
        assert_eq!(colon_hex(&[0x0a, 0xff, 0x10]), "0A:FF:10");
    }
}
