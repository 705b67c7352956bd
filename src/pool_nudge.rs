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
//! mark forever. So the relay nudges only when a connection is visibly stranded: a socket of
//! this process with received bytes that nobody has read, seen in two scans in a row. Served
//! connections never look like that (a thread is reading them), so in normal operation no nudge
//! is ever sent. A scan asks the kernel about this process's own socket descriptors (listed in
//! `/proc/self/fd`), so it costs microseconds per open connection; the system-wide TCP table
//! would cost milliseconds on a machine with a large connection hash.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

/// Time between two scans; a stranded connection is served within about two of these.
pub const SCAN_PERIOD: Duration = Duration::from_millis(500);
/// Without `/proc/self/fd`, nudge this often instead (slow enough for idle pool threads to
/// still time out and exit).
const BLIND_NUDGE_PERIOD: Duration = Duration::from_secs(2);
const MAX_NUDGES_PER_SCAN: usize = 32;
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

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

/// Inodes of this process's sockets that hold received bytes nobody has read yet; `None`
/// when the descriptor list cannot be read. tiny_http keeps two descriptors per connection
/// (one to read, one to write); the inode names the connection once.
pub fn sockets_with_unread_bytes() -> Option<HashSet<u64>> {
    let descriptors = std::fs::read_dir("/proc/self/fd").ok()?;
    let found = descriptors
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<libc::c_int>().ok())
        .filter_map(unread_socket_inode)
        .collect();
    Some(found)
}

/// The socket inode behind `fd` if it is a socket with unread bytes. Only queries: the
/// descriptor belongs to another thread and is never read, written or closed here. If it was
/// closed and reused since the listing, the answer is about the new file, which at worst
/// costs one unneeded nudge.
fn unread_socket_inode(fd: libc::c_int) -> Option<u64> {
    // SAFETY: fstat and FIONREAD write only into the locals passed; an invalid or reused
    // descriptor makes them fail or describe another file, never touch memory of ours.
    unsafe {
        let mut status: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut status) != 0 || status.st_mode & libc::S_IFMT != libc::S_IFSOCK {
            return None;
        }
        let mut unread: libc::c_int = 0;
        // Listening sockets answer EINVAL, which skips them.
        if libc::ioctl(fd, libc::FIONREAD as _, &mut unread) != 0 || unread <= 0 {
            return None;
        }
        Some(status.st_ino as u64)
    }
}

/// Starts the thread that watches for stranded connections for as long as the process runs.
pub fn start(listen: SocketAddr, stack_bytes: usize) {
    let target = nudge_target(listen);
    let started = thread::Builder::new()
        .name("sp-pool-nudge".into())
        .stack_size(stack_bytes)
        .spawn(move || watch(target));
    if let Err(error) = started {
        log::error!("cannot start the pool nudge thread: {error}");
    }
}

fn watch(target: SocketAddr) {
    let mut previous = HashSet::new();
    let mut warned = false;
    loop {
        thread::sleep(SCAN_PERIOD);
        let Some(waiting) = sockets_with_unread_bytes() else {
            // No descriptor list (no /proc, or none left to open it with): nudge anyway, slowly
            // enough for idle pool threads to still time out, and try the list again after.
            if !warned {
                log::warn!(
                    "cannot list this process's descriptors; nudging the connection pool blindly"
                );
                warned = true;
            }
            thread::sleep(BLIND_NUDGE_PERIOD);
            nudge(target);
            continue;
        };
        let stranded = waiting.intersection(&previous).count();
        if stranded > 0 {
            log::debug!("{stranded} connection(s) waiting for a pool thread; nudging");
            for _ in 0..stranded.min(MAX_NUDGES_PER_SCAN) {
                nudge(target);
            }
        }
        previous = waiting;
    }
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
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::os::fd::AsRawFd;

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
    fn finds_sockets_with_unread_bytes_and_only_while_unread() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let inode = {
            let mut status: libc::stat = unsafe { std::mem::zeroed() };
            assert_eq!(unsafe { libc::fstat(server.as_raw_fd(), &mut status) }, 0);
            status.st_ino as u64
        };
        assert!(!sockets_with_unread_bytes().unwrap().contains(&inode));
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !sockets_with_unread_bytes().unwrap().contains(&inode) {
            assert!(
                std::time::Instant::now() < deadline,
                "unread bytes never seen"
            );
            thread::sleep(Duration::from_millis(5));
        }
        let mut buffer = [0u8; 64];
        let _ = server.read(&mut buffer).unwrap();
        assert!(!sockets_with_unread_bytes().unwrap().contains(&inode));
    }
}
