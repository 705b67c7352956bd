//! The links a phone opens, built in one place for the dashboard's "Add a phone" (as text and
//! as QR codes) and for the addresses the relay announces at start.
//!
//! Scheme and port come from [`phone_origin`] alone: phones need a secure context for the
//! camera, so the push link goes to the relay's HTTPS port whenever it has one, and is plain
//! HTTP on the port the dashboard was reached on only when HTTPS is off. With the relay's own
//! certificate authority there is a second link, to the set-up page that installs it: over
//! plain HTTP, because a phone that does not trust the authority yet cannot open it over
//! HTTPS without a warning.
//!
//! The host is the one the dashboard was opened with (a name or address that already worked
//! from a browser), unless that is a loopback name, which means nothing on a phone: then the
//! host's LAN addresses stand in. A relay that listens on loopback only gets no links at all,
//! but the reason, since no link could work.

use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

use crate::config::Config;
use crate::relay::device_id::DeviceId;
use crate::text::json::push_string;

/// What stands in the push link for a token the dashboard does not know.
pub const TOKEN_PLACEHOLDER: &str = "PUSH_TOKEN";

/// Scheme and port of the pages phones open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhoneOrigin {
    pub scheme: &'static str,
    /// `None`: the scheme's default port, left out of the link.
    pub port: Option<u16>,
}

/// What the links need to know of the relay's HTTPS port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpsPort {
    pub port: u16,
    /// Whether the certificate comes from the relay's own authority, which phones install
    /// from the set-up page (not so for `--tls-cert`, a certificate phones already trust).
    pub own_authority: bool,
}

/// Where phones open the push page: the HTTPS port when there is one (whatever port the
/// dashboard was reached on), else plain HTTP on `plain_port`.
pub fn phone_origin(plain_port: Option<u16>, https: Option<HttpsPort>) -> PhoneOrigin {
    match https {
        Some(https) => PhoneOrigin {
            scheme: "https",
            port: Some(https.port),
        },
        None => PhoneOrigin {
            scheme: "http",
            port: plain_port,
        },
    }
}

/// The set-up page that installs the relay's authority, when phones need it: plain HTTP on
/// `plain_port`.
pub fn setup_link(host: &str, plain_port: Option<u16>, https: Option<HttpsPort>) -> Option<String> {
    https.filter(|https| https.own_authority).map(|_| {
        link(
            PhoneOrigin {
                scheme: "http",
                port: plain_port,
            },
            host,
            SETUP_PATH,
        )
    })
}

/// The page that explains and serves the relay's certificate authority.
pub const SETUP_PATH: &str = "/https.html";

/// How the push link carries a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushToken<'a> {
    /// Pushing is open.
    NotNeeded,
    /// Pushing needs a token, and the dashboard was opened with one that may push.
    Carried(&'a str),
    /// Pushing needs a token the dashboard does not have: the link holds a placeholder.
    Needed,
}

impl PushToken<'_> {
    fn as_str(self) -> &'static str {
        match self {
            PushToken::NotNeeded => "none",
            PushToken::Carried(_) => "carried",
            PushToken::Needed => "needed",
        }
    }
}

/// What the dashboard shows under "Add a phone".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneLinks {
    /// No phone can reach the relay; the text says why and what to do.
    Unreachable(String),
    Links {
        push: String,
        token: &'static str,
        /// The set-up page for the relay's own authority, when phones need it.
        setup: Option<String>,
    },
}

impl PhoneLinks {
    /// The links for a dashboard reached with `host_header`, on a relay configured with
    /// `config` (its `listen` the address actually bound); `lan` gives the host's LAN addresses
    /// (read only when needed).
    pub fn for_dashboard(
        host_header: Option<&str>,
        config: &Config,
        https: Option<HttpsPort>,
        device: &DeviceId,
        token: PushToken,
        lan: impl FnOnce() -> Vec<IpAddr>,
    ) -> PhoneLinks {
        let listen = config.listen;
        if let Some(why) = unreachable_reason(listen) {
            return PhoneLinks::Unreachable(why);
        }
        let reached = host_header.and_then(split_host);
        let (host, port) = match reached {
            Some((host, port)) if !is_loopback_name(&host) => (host, port),
            // A loopback name (or no usable Host): a LAN address and the listening port.
            _ => match announced_hosts(listen.ip(), lan()).first() {
                Some(address) => (url_host(*address), Some(listen.port())),
                None => {
                    return PhoneLinks::Unreachable(
                        "this host has no LAN address: connect it to the network phones are \
                         on"
                        .into(),
                    )
                }
            },
        };
        PhoneLinks::Links {
            push: link(
                phone_origin(port, https),
                &host,
                &push_path(Some(device), token),
            ),
            token: token.as_str(),
            // Plain HTTP on the port the dashboard was reached on, unless that was the HTTPS
            // port (the dashboard opened over HTTPS): then the plain port the relay listens on.
            setup: setup_link(
                &host,
                port.filter(|&reached| https.map(|h| h.port) != Some(reached))
                    .or(Some(listen.port())),
                https,
            ),
        }
    }

    /// The answer of `GET /api/phone`.
    pub fn json(&self) -> String {
        let mut json = String::new();
        match self {
            PhoneLinks::Unreachable(why) => {
                json.push_str("{\"reachable\":false,\"why\":");
                push_string(&mut json, why);
            }
            PhoneLinks::Links { push, token, setup } => {
                json.push_str("{\"reachable\":true,\"push\":");
                push_string(&mut json, push);
                let _ = write!(json, ",\"push_token\":\"{token}\",\"setup\":");
                match setup {
                    Some(setup) => push_string(&mut json, setup),
                    None => json.push_str("null"),
                }
            }
        }
        json.push_str("}\n");
        json
    }
}

/// Why phones cannot reach a relay listening on `listen`, if they cannot.
pub fn unreachable_reason(listen: SocketAddr) -> Option<String> {
    listen.ip().is_loopback().then(|| {
        format!(
            "this relay listens on {} only, which phones cannot reach; start it with \
             --listen 0.0.0.0:{}",
            listen.ip(),
            listen.port()
        )
    })
}

/// The addresses phones are told for a listener on `listen`: all LAN addresses of its family
/// for a wildcard (`0.0.0.0` takes IPv4 only; `::` takes both on Linux), else `listen` itself.
pub fn announced_hosts(listen: IpAddr, lan: Vec<IpAddr>) -> Vec<IpAddr> {
    match listen {
        IpAddr::V4(v4) if v4.is_unspecified() => lan.into_iter().filter(IpAddr::is_ipv4).collect(),
        IpAddr::V6(v6) if v6.is_unspecified() => lan,
        address => vec![address],
    }
}

/// `address` as it stands in a URL: IPv6 in brackets.
pub fn url_host(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// `scheme://host[:port]path`.
pub fn link(origin: PhoneOrigin, host: &str, path: &str) -> String {
    match origin.port {
        Some(port) => format!("{}://{host}:{port}{path}", origin.scheme),
        None => format!("{}://{host}{path}", origin.scheme),
    }
}

/// `/push.html`, with the device id and token when there are. Ids and tokens are made of
/// characters that need no escaping in a query (see `DeviceId` and `Secret`).
pub fn push_path(device: Option<&DeviceId>, token: PushToken) -> String {
    let mut path = String::from("/push.html");
    let mut separator = '?';
    if let Some(device) = device {
        let _ = write!(path, "?device_id={device}");
        separator = '&';
    }
    match token {
        PushToken::NotNeeded => {}
        PushToken::Carried(token) => {
            let _ = write!(path, "{separator}token={token}");
        }
        PushToken::Needed => {
            let _ = write!(path, "{separator}token={TOKEN_PLACEHOLDER}");
        }
    }
    path
}

/// A `Host` header split into host (as written in a URL) and port; `None` when it is not a
/// plain name or address, so nothing odd a client sent ends up in a link.
fn split_host(header: &str) -> Option<(String, Option<u16>)> {
    let header = header.trim();
    let (host, port) = if let Some(rest) = header.strip_prefix('[') {
        // An IPv6 literal: its characters only (a full parse would cost the MIPS build more
        // than it checks here; the browser already reached the relay by it).
        let (inside, after) = rest.split_once(']')?;
        let literal = !inside.is_empty()
            && inside
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        if !literal {
            return None;
        }
        (format!("[{}]", inside.to_ascii_lowercase()), after)
    } else {
        let (name, after) = match header.find(':') {
            Some(colon) => header.split_at(colon),
            None => (header, ""),
        };
        let fits = !name.is_empty()
            && name.len() <= 253
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !fits {
            return None;
        }
        (name.to_ascii_lowercase(), after)
    };
    let port = match port.strip_prefix(':') {
        None if port.is_empty() => None,
        Some(digits) => Some(digits.parse::<u16>().ok().filter(|&p| p != 0)?),
        None => return None,
    };
    Some((host, port))
}

/// `localhost` and its subdomains, 127.0.0.0/8, `::1` and the unspecified addresses: names that
/// lead a phone to itself or nowhere. `host` is as `split_host` leaves it (lowercase).
fn is_loopback_name(host: &str) -> bool {
    let ipv4_loopback = host.strip_prefix("127.").is_some_and(|rest| {
        rest.split('.').count() == 3 && rest.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    });
    ipv4_loopback
        || matches!(
            host,
            "localhost" | "0.0.0.0" | "[::1]" | "[::]" | "[0:0:0:0:0:0:0:1]"
        )
        || host.ends_with(".localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cam() -> DeviceId {
        DeviceId::parse("cam_1").unwrap()
    }

    fn lan() -> Vec<IpAddr> {
        vec!["192.168.1.2".parse().unwrap(), "fd00::2".parse().unwrap()]
    }

    fn listening(listen: &str) -> Config {
        Config {
            listen: listen.parse().unwrap(),
            ..Config::default()
        }
    }

    fn push_link(host: Option<&str>, listen: &str, token: PushToken) -> PhoneLinks {
        PhoneLinks::for_dashboard(host, &listening(listen), None, &cam(), token, lan)
    }

    fn links(push: &str, token: &'static str) -> PhoneLinks {
        PhoneLinks::Links {
            push: push.into(),
            token,
            setup: None,
        }
    }

    #[test]
    fn with_https_the_push_link_goes_to_its_port_and_the_set_up_page_stays_plain() {
        let own = HttpsPort {
            port: 19443,
            own_authority: true,
        };
        let answer = PhoneLinks::for_dashboard(
            Some("cams.lan:19999"),
            &listening("0.0.0.0:19999"),
            Some(own),
            &cam(),
            PushToken::NotNeeded,
            lan,
        );
        assert_eq!(
            answer,
            PhoneLinks::Links {
                push: "https://cams.lan:19443/push.html?device_id=cam_1".into(),
                token: "none",
                setup: Some("http://cams.lan:19999/https.html".into()),
            }
        );
        // A dashboard opened over HTTPS still gets the set-up page on the plain port.
        let over_https = PhoneLinks::for_dashboard(
            Some("cams.lan:19443"),
            &listening("0.0.0.0:19999"),
            Some(own),
            &cam(),
            PushToken::NotNeeded,
            lan,
        );
        assert!(
            matches!(&over_https, PhoneLinks::Links { setup: Some(setup), .. }
                if setup == "http://cams.lan:19999/https.html"),
            "{over_https:?}"
        );
        // A certificate of the user's own needs no set-up page.
        let given = HttpsPort {
            own_authority: false,
            ..own
        };
        let answer = PhoneLinks::for_dashboard(
            Some("localhost:19999"),
            &listening("0.0.0.0:19999"),
            Some(given),
            &cam(),
            PushToken::NotNeeded,
            lan,
        );
        assert_eq!(
            answer,
            links(
                "https://192.168.1.2:19443/push.html?device_id=cam_1",
                "none"
            )
        );
    }

    #[test]
    fn the_dashboards_own_host_and_port_are_kept() {
        assert_eq!(
            push_link(Some("cams.lan:8080"), "0.0.0.0:19999", PushToken::NotNeeded),
            links("http://cams.lan:8080/push.html?device_id=cam_1", "none")
        );
        assert_eq!(
            push_link(Some("[fd00::7]:19999"), "[::]:19999", PushToken::NotNeeded),
            links("http://[fd00::7]:19999/push.html?device_id=cam_1", "none")
        );
        assert_eq!(
            push_link(Some("Cams.LAN"), "0.0.0.0:80", PushToken::Carried("t0k")),
            links(
                "http://cams.lan/push.html?device_id=cam_1&token=t0k",
                "carried"
            )
        );
    }

    #[test]
    fn loopback_names_give_way_to_a_lan_address() {
        for host in [
            Some("localhost:19999"),
            Some("127.0.0.1:19999"),
            Some("127.1.2.3"),
            Some("[::1]:19999"),
            Some("0.0.0.0:19999"),
            None,
            Some("bad host"),
        ] {
            assert_eq!(
                push_link(host, "0.0.0.0:19999", PushToken::Needed),
                links(
                    "http://192.168.1.2:19999/push.html?device_id=cam_1&token=PUSH_TOKEN",
                    "needed"
                ),
                "{host:?}"
            );
        }
        let none = PhoneLinks::for_dashboard(
            Some("localhost"),
            &listening("0.0.0.0:19999"),
            None,
            &cam(),
            PushToken::NotNeeded,
            Vec::new,
        );
        assert!(matches!(none, PhoneLinks::Unreachable(_)));
    }

    #[test]
    fn a_loopback_listener_gets_the_reason_instead_of_links() {
        let answer = push_link(Some("127.0.0.1:5"), "127.0.0.1:5", PushToken::NotNeeded);
        assert_eq!(
            answer.json(),
            "{\"reachable\":false,\"why\":\"this relay listens on 127.0.0.1 only, which phones \
             cannot reach; start it with --listen 0.0.0.0:5\"}\n"
        );
    }

    #[test]
    fn hosts_announced_follow_the_listeners_family() {
        let v4: IpAddr = "192.168.1.2".parse().unwrap();
        assert_eq!(announced_hosts("0.0.0.0".parse().unwrap(), lan()), vec![v4]);
        assert_eq!(announced_hosts("::".parse().unwrap(), lan()), lan());
        let own: IpAddr = "10.1.1.1".parse().unwrap();
        assert_eq!(announced_hosts(own, lan()), vec![own]);
        assert_eq!(url_host("fd00::2".parse().unwrap()), "[fd00::2]");
    }

    #[test]
    fn odd_host_headers_are_not_used() {
        for header in ["a b", "a:99999", "a:", "[zz]:1", "[]", "a/b", "a:1:2", ""] {
            assert_eq!(split_host(header), None, "{header}");
        }
    }

    #[test]
    fn json_names_the_link_and_the_token_kind() {
        assert_eq!(
            links("http://h:1/push.html?device_id=cam_1", "none").json(),
            "{\"reachable\":true,\"push\":\"http://h:1/push.html?device_id=cam_1\",\
             \"push_token\":\"none\",\"setup\":null}\n"
        );
    }
}
