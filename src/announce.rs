//! The relay says where it is: at start it logs, for each LAN address of the host, the
//! dashboard's URL and the phone's, so nobody has to find out the host's address first. When
//! standard error is a terminal (someone ran it by hand, say `cargo run --release` on a
//! laptop), the phone's URL follows as a QR code a phone's camera opens. Under procd or
//! systemd, whose logs are files and journals, only the URLs are written.

use std::io::{IsTerminal, Write};

use crate::config::Config;
use crate::host_addresses;
use crate::qr::{self, QrCode};
use crate::web::phone_links::{self, HttpsPort, PushToken};

/// Logs the URLs for a relay configured with `config`, its `listen` the address actually
/// bound, and serving HTTPS on `https` if any; prints the phone's as a QR code too when
/// standard error is a terminal.
pub fn announce(config: &Config, https: Option<HttpsPort>) {
    let listening = config.listen;
    let port = listening.port();
    if let Some(why) = phone_links::unreachable_reason(listening) {
        log::warn!("{why}");
        log::info!("dashboard on this machine: http://{}/", listening);
        return;
    }
    let hosts = phone_links::announced_hosts(listening.ip(), host_addresses::lan_addresses());
    if hosts.is_empty() {
        log::warn!(
            "no LAN address found on this host: phones reach the relay at its address, port \
             {port}, once it has one"
        );
        return;
    }
    let phone_path = phone_links::push_path(None, PushToken::NotNeeded);
    let mut first_phone_url = None;
    for host in &hosts {
        let host = phone_links::url_host(*host);
        let origin = phone_links::phone_origin(Some(port), https);
        let phone = phone_links::link(origin, &host, &phone_path);
        match phone_links::setup_link(&host, Some(port), https) {
            Some(setup) => {
                log::info!("dashboard: http://{host}:{port}/  phone: {phone}  certificate: {setup}")
            }
            None => log::info!("dashboard: http://{host}:{port}/  phone: {phone}"),
        }
        first_phone_url.get_or_insert(phone);
    }
    if config.access.push_is_protected() {
        // Worded without `token=`: the log masks whatever follows it.
        log::info!(
            "pushing needs a token: add it to the phone URL as its token parameter, or open \
             the dashboard with it there for a phone link and code that carry it"
        );
    }
    let stderr = std::io::stderr();
    if let Some(url) = first_phone_url.filter(|_| stderr.is_terminal()) {
        print_code(&mut stderr.lock(), &url);
    }
}

/// The QR code of `url` with a line saying what it is. A link too long for a code stays text
/// only (the longest announced, with a full IPv6 address, is about 70 bytes of the 213).
fn print_code(out: &mut impl Write, url: &str) {
    let Ok(code) = QrCode::encode(url.as_bytes()) else {
        return;
    };
    let text = format!(
        "\nScan with the phone's camera to open {url}\n{}\n",
        qr::terminal::render(&code)
    );
    // The log's own writer ignores failures to write to standard error too: there is nowhere
    // else to report them.
    let _ = out.write_all(text.as_bytes());
}
