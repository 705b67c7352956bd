//! Which names a TLS certificate may carry: DNS names and IP addresses, checked when
//! `--tls-names` is read so that a typo fails at start-up, not at the first certificate.

use std::net::IpAddr;

/// Letters, digits and hyphens in dot-separated labels of at most 63 characters: what a
/// certificate may name (a host name with an underscore or a space is left out rather than
/// making every certificate fail).
pub fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
        })
}

/// A name `--tls-names` may give: an IP address or a DNS name.
pub fn is_certificate_name(name: &str) -> bool {
    name.parse::<IpAddr>().is_ok() || is_dns_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_a_certificate_may_carry() {
        assert!(is_certificate_name("cams.test"));
        assert!(is_certificate_name("router"));
        assert!(is_certificate_name("192.168.1.1"));
        assert!(is_certificate_name("fd00::1"));
        assert!(!is_certificate_name("bad_name"));
        assert!(!is_certificate_name("-x.lan"));
        assert!(!is_certificate_name("a..b"));
        assert!(!is_certificate_name(""));
    }
}
