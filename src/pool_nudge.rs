//! Works around a lost-wakeup race in tiny_http 0.12's connection thread pool.
//!
//! tiny_http hands each accepted connection to a pool (`util/task_pool.rs`). When it sees a
//! thread waiting, it queues the connection and signals one waiter; otherwise it starts a new
//! thread. But a waiter counts as "waiting" until it has woken up and run, so when several
//! connections arrive at once (go2rtc and Home Assistant reconnecting together after a relay
//! restart, a browser opening six streams), several of them can be queued for the same single
//! waiter. The first is served; the others sit in the queue, unanswered, until some pool
//! thread finishes its current connection. Viewers and kept-alive pushers hold their
//! connections for hours, so that may be never. Ten simultaneous connections left three
//! unanswered here (`tests/bad_input.rs` reproduces it).
//!
//! The relay cannot change the pool, but it can make a pool thread finish a connection: a
//! connection to itself that closes at once. Whichever way the pool takes it (a new thread
//! that then pops the queue, or a queued entry whose signal wakes a waiter that pops the
//! oldest entry first), each such nudge gets one stranded connection served.
//!
//! Nudging blindly would have a cost: every nudge wakes an idle pool thread, and idle threads
//! only exit after 5 s without a wake-up, so steady nudges would keep the pool at its high-water
//! mark forever. So the relay nudges only when a connection is visibly stranded: an
//! established connection to the relay's port whose received bytes nobody has read, seen in
//! two scans of the kernel's TCP table in a row. Served connections never look like that (a
//! thread is reading them), so in normal operation no nudge is ever sent.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

/// Time between two scans; a stranded connection is served within about two of these.
pub const SCAN_PERIOD: Duration = Duration::from_millis(500);
/// Without a readable TCP table, nudge this often instead (slow enough for idle pool threads
/// to still time out and exit).
const BLIND_NUDGE_PERIOD: Duration = Duration::from_secs(2);
const MAX_NUDGES_PER_SCAN: usize = 32;
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const TCP_TABLES: [&str; 2] = ["/proc/net/tcp", "/proc/net/tcp6"];
/// `st` column value of an established connection.
const ESTABLISHED: &str = "01";

/// Where to connect to reach a listener bound to `listen` (an unspecified address means
/// "every interface", reached through loopback).
pub fn nudge_target(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// Remote ends of established connections to `port` with unread received bytes, from the
/// text of `/proc/net/tcp` or `/proc/net/tcp6`.
pub fn connections_with_unread_bytes(table: &str, port: u16) -> HashSet<String> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split_whitespace().skip(1);
            let local = fields.next()?;
            let remote = fields.next()?;
            let state = fields.next()?;
            let queues = fields.next()?;
            let local_port = u16::from_str_radix(local.rsplit(':').next()?, 16).ok()?;
            let unread = u32::from_str_radix(queues.split(':').nth(1)?, 16).ok()?;
            let stranded = local_port == port && state == ESTABLISHED && unread > 0;
            stranded.then(|| remote.to_string())
        })
        .collect()
}

/// Starts the thread that watches for stranded connections for as long as the process runs.
pub fn start(listen: SocketAddr, stack_bytes: usize) {
    let target = nudge_target(listen);
    let started = thread::Builder::new()
        .name("sp-pool-nudge".into())
        .stack_size(stack_bytes)
        .spawn(move || watch(target, listen.port()));
    if let Err(error) = started {
        log::error!("cannot start the pool nudge thread: {error}");
    }
}

fn watch(target: SocketAddr, port: u16) {
    let mut previous = HashSet::new();
    loop {
        let Some(waiting) = scan(port) else {
            log::warn!("cannot read the kernel's TCP table; nudging the connection pool blindly");
            loop {
                thread::sleep(BLIND_NUDGE_PERIOD);
                nudge(target);
            }
        };
        let stranded = waiting.intersection(&previous).count();
        if stranded > 0 {
            log::debug!("{stranded} connection(s) waiting for a pool thread; nudging");
            for _ in 0..stranded.min(MAX_NUDGES_PER_SCAN) {
                nudge(target);
            }
        }
        previous = waiting;
        thread::sleep(SCAN_PERIOD);
    }
}

fn scan(port: u16) -> Option<HashSet<String>> {
    let mut found = HashSet::new();
    let mut readable = false;
    for table in TCP_TABLES {
        if let Ok(text) = std::fs::read_to_string(table) {
            readable = true;
            found.extend(connections_with_unread_bytes(&text, port));
        }
    }
    readable.then_some(found)
}

/// Connects and closes at once; the pool thread that takes it sees end-of-stream, finishes,
/// and moves on to the queue.
fn nudge(target: SocketAddr) {
    if let Err(error) = TcpStream::connect_timeout(&target, CONNECT_TIMEOUT) {
        log::debug!("pool nudge to {target} failed: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_addresses_are_reached_through_loopback() {
        let target = nudge_target("0.0.0.0:19999".parse().unwrap());
        assert_eq!(target, "127.0.0.1:19999".parse().unwrap());
        let target = nudge_target("[::]:19999".parse().unwrap());
        assert_eq!(target, "[::1]:19999".parse().unwrap());
        let target = nudge_target("192.168.1.2:80".parse().unwrap());
        assert_eq!(target, "192.168.1.2:80".parse().unwrap());
    }

    #[test]
    fn finds_established_connections_to_our_port_with_unread_bytes() {
        // Port 19999 is 4E1F. Rows: the listener; a stranded connection; a served one; a
        // client socket of ours whose *remote* port is 19999; another port; a closing one.
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:4E1F 00000000:0000 0A 00000000:00000003 00:00000000 00000000     0        0 1 1 0
   1: 0100007F:4E1F 0100007F:A1B2 01 00000000:00000025 00:00000000 00000000     0        0 2 1 0
   2: 0100007F:4E1F 0100007F:A1B3 01 0000EA60:00000000 00:00000000 00000000     0        0 3 1 0
   3: 0100007F:A1B4 0100007F:4E1F 01 00000000:00000010 00:00000000 00000000     0        0 4 1 0
   4: 0100007F:0050 0100007F:A1B5 01 00000000:00000010 00:00000000 00000000     0        0 5 1 0
   5: 0100007F:4E1F 0100007F:A1B6 08 00000000:00000001 00:00000000 00000000     0        0 6 1 0
";
        let found = connections_with_unread_bytes(table, 19999);
        assert_eq!(found, HashSet::from(["0100007F:A1B2".to_string()]));
        assert!(connections_with_unread_bytes("garbage\nmore garbage", 19999).is_empty());
    }

    #[test]
    fn reads_ipv6_rows() {
        let table = "header
   0: 00000000000000000000000001000000:4E1F 00000000000000000000000001000000:C350 01 00000000:0000000A 00:00000000 00000000 0 0 7 1 0
";
        assert_eq!(connections_with_unread_bytes(table, 19999).len(), 1);
    }
}
