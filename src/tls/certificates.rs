//! The certificate the HTTPS port presents, swapped without a restart when it must change.
//!
//! Each handshake asks [`Certificates::resolve`] for the current certificate: a clone of an
//! `Arc` under a read lock, so a swap reaches every new connection at once and connections
//! already open keep theirs. [`Certificates::refresh`] runs on the housekeeping thread every
//! second and does little unless something changed:
//! - given files (`--tls-cert`, `--tls-key`, from a public authority through OpenWrt's acme
//!   package or certbot): their modification times and sizes are compared with the last
//!   load; a renewal is picked up within a second. A pair that does not load (the key written
//!   before the certificate, say) keeps the old certificate in use and is tried again at the
//!   next change;
//! - the relay's own authority: the host's names are looked at every [`NAMES_PERIOD`] (a new
//!   address from DHCP) and whenever `--tls-names-file` changes; other names, or a
//!   certificate near its end, get a new certificate.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::{Mutex, RwLock};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::TlsSettings;
use crate::state::StateDir;
use crate::tls::authority::Authority;
use crate::tls::issuing::{self, Issued};
use crate::tls::{clock, names, TlsError};

/// How often the host's addresses are looked at for a change.
pub const NAMES_PERIOD: Duration = Duration::from_secs(30);

pub struct Certificates {
    current: RwLock<Arc<CertifiedKey>>,
    source: Mutex<Source>,
}

/// Where the certificate comes from. One per relay, so the size of the larger variant does
/// not matter.
#[allow(clippy::large_enum_variant)]
enum Source {
    Given {
        cert: PathBuf,
        key: PathBuf,
        seen: [Stamp; 2],
    },
    Own {
        authority: Authority,
        state: StateDir,
        extra: Vec<String>,
        names_file: Option<PathBuf>,
        names_file_seen: Stamp,
        issued: Issued,
        looked: Instant,
    },
}

/// What tells a file changed: its modification time and size (`None`: missing).
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let metadata = fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Certificates")
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.current.read()))
    }
}

impl Certificates {
    /// The certificate to start with: the given files, or the own authority's (made, issued
    /// or reused). Returns it with the authority, if the relay uses its own.
    pub fn start(
        settings: &TlsSettings,
        state: &StateDir,
    ) -> Result<(Certificates, Option<crate::https::Authority>), TlsError> {
        if let Some((cert, key)) = &settings.given {
            let certified = load_given(cert, key)?;
            let source = Source::Given {
                cert: cert.clone(),
                key: key.clone(),
                seen: [stamp(cert), stamp(key)],
            };
            return Ok((Certificates::new(certified, source), None));
        }
        let (authority, made) = Authority::load_or_create(state)?;
        if made {
            log::info!(
                "made a certificate authority for HTTPS in {state}; phones install it from /ca.crt"
            );
        }
        let names_file = settings.names_file.clone();
        let names_file_seen = names_file.as_deref().and_then(stamp);
        let extra = settings.names.clone();
        let names = names::of_host(&with_file_names(&extra, names_file.as_deref()));
        let today = clock::days_now();
        let issued = match issuing::reuse(state, &names, today) {
            Some(issued) => issued,
            None => {
                let issued = issuing::issue(&authority, state, &names, today)?;
                log::info!(
                    "issued an HTTPS certificate for {}",
                    issued.names.join(", ")
                );
                issued
            }
        };
        let published = authority.published();
        let source = Source::Own {
            authority,
            state: state.clone(),
            extra,
            names_file,
            names_file_seen,
            looked: Instant::now(),
            issued,
        };
        let key = match &source {
            Source::Own { issued, .. } => Arc::clone(&issued.key),
            Source::Given { .. } => unreachable!("the source was made just above"),
        };
        Ok((Certificates::new(key, source), Some(published)))
    }

    fn new(key: Arc<CertifiedKey>, source: Source) -> Certificates {
        Certificates {
            current: RwLock::new(key),
            source: Mutex::new(source),
        }
    }

    /// The names the current certificate carries, when the relay issued it.
    pub fn names(&self) -> Option<Vec<String>> {
        match &*self.source.lock() {
            Source::Own { issued, .. } => Some(issued.names.clone()),
            Source::Given { .. } => None,
        }
    }

    /// Swaps in a new certificate if one is due (see the module docs). Cheap when nothing
    /// changed: two `stat` calls, or one and a clock reading.
    pub fn refresh(&self) {
        let mut source = self.source.lock();
        match &mut *source {
            Source::Given { cert, key, seen } => {
                let now = [stamp(cert), stamp(key)];
                if now == *seen {
                    return;
                }
                *seen = now;
                match load_given(cert, key) {
                    Ok(certified) => {
                        *self.current.write() = certified;
                        log::info!("HTTPS certificate reloaded from {}", cert.display());
                    }
                    Err(error) => log::warn!("{error}; the previous certificate stays in use"),
                }
            }
            Source::Own {
                authority,
                state,
                extra,
                names_file,
                names_file_seen,
                issued,
                looked,
            } => {
                let file_now = names_file.as_deref().and_then(stamp);
                if looked.elapsed() < NAMES_PERIOD && file_now == *names_file_seen {
                    return;
                }
                *looked = Instant::now();
                *names_file_seen = file_now;
                let names = names::of_host(&with_file_names(extra, names_file.as_deref()));
                let today = clock::days_now();
                if !issued.is_stale(&names, today) {
                    return;
                }
                match issuing::issue(authority, state, &names, today) {
                    Ok(new) => {
                        log::info!("issued an HTTPS certificate for {}", new.names.join(", "));
                        *self.current.write() = Arc::clone(&new.key);
                        *issued = new;
                    }
                    Err(error) => {
                        log::warn!("cannot issue a new HTTPS certificate: {error}")
                    }
                }
            }
        }
    }
}

/// `extra` and the names in `file` (one per line, `#` comments; a missing or unreadable
/// file adds none, and an invalid name is skipped with a warning).
fn with_file_names(extra: &[String], file: Option<&Path>) -> Vec<String> {
    let mut all = extra.to_vec();
    let Some(path) = file else {
        return all;
    };
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            log::warn!("cannot read --tls-names-file {}: {error}", path.display());
            return all;
        }
    };
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if crate::text::host_name::is_certificate_name(line) {
            all.push(line.to_string());
        } else {
            log::warn!(
                "{}: {line} is not a DNS name or an IP address",
                path.display()
            );
        }
    }
    all
}

/// The certificate chain and key from PEM files.
fn load_given(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    fn unreadable<'a>(
        path: &'a Path,
        what: &'a str,
    ) -> impl FnOnce(rustls::pki_types::pem::Error) -> TlsError + 'a {
        move |error| TlsError::Broken(format!("cannot read {what} {}: {error}", path.display()))
    }
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
        .map_err(unreadable(cert, "the certificate"))?;
    if chain.is_empty() {
        return Err(TlsError::Broken(format!(
            "no certificate in {}",
            cert.display()
        )));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(unreadable(key, "the key"))?;
    Ok(Arc::new(issuing::certified(chain, &private)?))
}
