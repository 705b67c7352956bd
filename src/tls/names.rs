//! The names a server certificate from the relay's own authority carries: every way a phone
//! may reach the host.
//!
//! That is each address of the host's interfaces (`host_addresses`) except link-local ones,
//! which a browser cannot put in a URL without a zone, the host name, `HOSTNAME.local` (mDNS, as
//! OpenWrt's umdns and Avahi announce it), `localhost`, and what `--tls-names` and
//! `--tls-names-file` add (a DNS name on the router, a dynamic DNS name). The set is sorted, so
//! two sets compare equal whatever order the system listed the interfaces in.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::host_addresses;
use crate::sys;
use crate::text::host_name::is_dns_name;

/// Every name the certificate should carry, sorted, each once.
pub fn of_host(extra: &[String]) -> Vec<String> {
    let mut names = BTreeSet::new();
    names.insert("localhost".to_string());
    names.extend(
        host_addresses::interface_addresses()
            .into_iter()
            .filter(|address| !is_link_local(address))
            .map(|address| address.to_string()),
    );
    if let Some(host) = sys::host_name().filter(|host| is_dns_name(host)) {
        let first_label = host.split('.').next().unwrap_or_default().to_string();
        names.insert(format!("{first_label}.local"));
        names.insert(host);
    }
    names.extend(extra.iter().cloned());
    names.into_iter().collect()
}

fn is_link_local(address: &IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_named_by_its_addresses_and_localhost() {
        let names = of_host(&["cams.test".to_string()]);
        assert!(names.contains(&"localhost".to_string()));
        assert!(names.contains(&"127.0.0.1".to_string()));
        assert!(names.contains(&"cams.test".to_string()));
        assert!(!names.iter().any(|name| name.starts_with("fe80:")));
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted);
    }
}
