//! The addresses of this host that other machines on the LAN can reach: what the relay puts
//! in the links it announces at start and shows on the dashboard (and what a certificate for
//! the host has to name).
//!
//! Loopback addresses reach only this machine, and IPv6 link-local ones (`fe80::/10`) need a
//! zone (`%wlan0`) that no browser accepts in a URL, so both are left out. The order puts
//! what a phone most likely reaches first: private IPv4 (a home LAN), other IPv4, then IPv6.
//!
//! The addresses come from the kernel's interface list for IPv4 and from
//! `/proc/self/net/if_inet6` for IPv6, not from `getifaddrs`: musl's asks netlink, which
//! qemu-user loops on for big-endian MIPS, and the systemd unit would have to allow
//! `AF_NETLINK` (see `sys::ipv4_interface_addresses`).

use std::fs;
use std::net::{IpAddr, Ipv6Addr};

use crate::sys;

/// The host's LAN addresses, most likely reachable first, each once. Empty when the
/// interfaces cannot be read (said at debug level: the relay works without them).
pub fn lan_addresses() -> Vec<IpAddr> {
    lan_only(interface_addresses())
}

/// Every address of the host's interfaces, loopback and link-local included: IPv4 of the
/// interfaces that are up, then IPv6.
pub fn interface_addresses() -> Vec<IpAddr> {
    let mut addresses: Vec<IpAddr> = match sys::ipv4_interface_addresses() {
        Ok(v4) => v4.into_iter().map(IpAddr::V4).collect(),
        Err(error) => {
            log::debug!("cannot read the interface addresses: {error}");
            Vec::new()
        }
    };
    // A host without IPv6 has no such file.
    if let Ok(table) = fs::read_to_string(IPV6_ADDRESSES) {
        addresses.extend(ipv6_addresses(&table).map(IpAddr::V6));
    }
    addresses
}

/// The kernel's list of IPv6 addresses, one per line: the address as 32 hex digits, then the
/// interface index, prefix length, scope, flags and name.
const IPV6_ADDRESSES: &str = "/proc/self/net/if_inet6";

/// Flags of addresses that come and go by themselves: temporary (privacy) addresses, renewed
/// every day or so, and deprecated ones on their way out (`IFA_F_TEMPORARY`,
/// `IFA_F_DEPRECATED`). Phones are not told them, and a certificate does not follow them.
const FLEETING: u32 = 0x01 | 0x20;

fn ipv6_addresses(table: &str) -> impl Iterator<Item = Ipv6Addr> + '_ {
    table.lines().filter_map(|line| {
        let mut fields = line.split_whitespace();
        let hex = fields.next()?;
        let flags = u32::from_str_radix(fields.nth(3)?, 16).ok()?;
        (hex.len() == 32 && flags & FLEETING == 0)
            .then(|| u128::from_str_radix(hex, 16).ok())
            .flatten()
            .map(Ipv6Addr::from)
    })
}

/// Keeps the addresses another machine could reach, ordered and without repeats.
pub fn lan_only(addresses: impl IntoIterator<Item = IpAddr>) -> Vec<IpAddr> {
    let reachable: Vec<IpAddr> = addresses
        .into_iter()
        .filter(|address| !address.is_loopback() && !address.is_unspecified())
        .filter(|address| !is_link_local_v6(address))
        .collect();
    // One pass per kind keeps the kernel's order within each (and costs the MIPS build less
    // than a sort).
    let kinds: [fn(&IpAddr) -> bool; 3] = [
        |a| matches!(a, IpAddr::V4(v4) if v4.is_private()),
        |a| matches!(a, IpAddr::V4(v4) if !v4.is_private()),
        IpAddr::is_ipv6,
    ];
    let mut lan: Vec<IpAddr> = Vec::with_capacity(reachable.len());
    for kind in kinds {
        for address in reachable.iter().filter(|a| kind(a)) {
            if !lan.contains(address) {
                lan.push(*address);
            }
        }
    }
    lan
}

fn is_link_local_v6(address: &IpAddr) -> bool {
    matches!(address, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_are_read_from_the_kernels_table() {
        let table = "00000000000000000000000000000001 01 80 10 80       lo\n\
                     fd000000000000000000000000000002 02 40 00 80     eth0\n\
                     20010db8000000000000000000000007 02 40 00 01     eth0\n\
                     20010db8000000000000000000000008 02 40 00 a0     eth0\n\
                     garbage\n";
        let addresses: Vec<String> = ipv6_addresses(table).map(|a| a.to_string()).collect();
        assert_eq!(addresses, ["::1", "fd00::2"]);
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn only_addresses_a_phone_can_reach_most_likely_first() {
        let found = lan_only(
            [
                "127.0.0.1",
                "::1",
                "fe80::1",
                "2001:db8::5",
                "203.0.113.7",
                "192.168.1.2",
                "0.0.0.0",
                "fd00::2",
                "10.0.0.3",
                "192.168.1.2",
            ]
            .map(ip),
        );
        let expected = [
            "192.168.1.2",
            "10.0.0.3",
            "203.0.113.7",
            "2001:db8::5",
            "fd00::2",
        ];
        assert_eq!(found, expected.map(ip));
    }

    #[test]
    fn this_hosts_addresses_are_read() {
        // Every host has loopback; it is read, and then left out.
        let all = interface_addresses();
        assert!(all.iter().any(IpAddr::is_loopback), "{all:?}");
        assert!(lan_addresses().iter().all(|a| !a.is_loopback()));
    }
}
