//! The names a server certificate from the relay's own authority carries: every way a phone
//! may reach the host.
//!
//! That is each address of an interface that is up (IPv4 from the kernel's interface list, and
//! IPv6 from `/proc/self/net/if_inet6` except link-local, which a browser cannot put in a URL
//! without a zone), the host name, `HOSTNAME.local` (mDNS, as
//! OpenWrt's umdns and Avahi announce it), `localhost`, and what `--tls-names` and
//! `--tls-names-file` add (a DNS name on the router, a dynamic DNS name). The set is sorted, so
//! two sets compare equal whatever order the system listed the interfaces in.

use std::collections::BTreeSet;
use std::fs;
use std::net::{IpAddr, Ipv6Addr};

use crate::sys;
use crate::text::host_name::is_dns_name;

/// Every name the certificate should carry, sorted, each once.
pub fn of_host(extra: &[String]) -> Vec<String> {
    let mut names = BTreeSet::new();
    names.insert("localhost".to_string());
    match sys::ipv4_interface_addresses() {
        Ok(addresses) => names.extend(
            addresses
                .into_iter()
                .map(IpAddr::V4)
                .filter(|address| !is_link_local(address))
                .map(|address| address.to_string()),
        ),
        Err(error) => log::warn!("cannot list the interface addresses: {error}"),
    }
    // A host without IPv6 has no such file.
    if let Ok(table) = fs::read_to_string(IPV6_ADDRESSES) {
        names.extend(
            ipv6_addresses(&table)
                .map(IpAddr::V6)
                .filter(|address| !is_link_local(address))
                .map(|address| address.to_string()),
        );
    }
    if let Some(host) = sys::host_name().filter(|host| is_dns_name(host)) {
        let first_label = host.split('.').next().unwrap_or_default().to_string();
        names.insert(format!("{first_label}.local"));
        names.insert(host);
    }
    names.extend(extra.iter().cloned());
    names.into_iter().collect()
}

/// The kernel's list of IPv6 addresses, one per line: the address as 32 hex digits, then the
/// interface index, prefix length, scope, flags and name.
const IPV6_ADDRESSES: &str = "/proc/self/net/if_inet6";

fn ipv6_addresses(table: &str) -> impl Iterator<Item = Ipv6Addr> + '_ {
    table.lines().filter_map(|line| {
        let hex = line.split_whitespace().next()?;
        (hex.len() == 32)
            .then(|| u128::from_str_radix(hex, 16).ok())
            .flatten()
            .map(Ipv6Addr::from)
    })
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
    fn ipv6_addresses_are_read_from_the_kernels_table() {
        let table = "00000000000000000000000000000001 01 80 10 80       lo\n\
                     fd000000000000000000000000000002 02 40 00 80     eth0\n\
                     garbage\n";
        let addresses: Vec<String> = ipv6_addresses(table).map(|a| a.to_string()).collect();
        assert_eq!(addresses, ["::1", "fd00::2"]);
    }

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
