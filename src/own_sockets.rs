//! This process's own TCP connections, as the kernel sees them.
//!
//! tiny_http owns every accepted socket and offers no hook on them: no header timeout, no idle
//! timeout, no connection count, no way to close one. The kernel does: every descriptor of the
//! process is listed in `/proc/self/fd`, and `fstat`, `getpeername`, `FIONREAD` and `TCP_INFO`
//! describe a socket without reading from it. `connection_watch` builds its policies on these
//! scans; this module only observes, plus the one action the watch needs, `shutdown`, which
//! makes tiny_http's blocked read or write on that connection fail so that its own thread
//! closes the descriptors.
//!
//! A scan costs a few microseconds per open connection; the system-wide TCP table
//! (`/proc/net/tcp`) would cost milliseconds on a machine with a large connection hash.
//!
//! Listing the directory needs a descriptor of its own, which is exactly what is missing when
//! the process runs out of them, and then the watch is most needed (to close idle connections
//! and free descriptors). So a spare descriptor is kept open and given up for the listing when
//! opening the directory fails.

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::Duration;

use libc::c_int;

/// One connected TCP socket of this process (tiny_http holds two descriptors per connection,
/// one to read and one to write; the inode names the connection once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnSocket {
    pub fd: c_int,
    pub inode: u64,
    pub peer: SocketAddr,
    /// Received bytes that nobody has read yet.
    pub unread: usize,
    /// Time since the peer last sent data (or since the connection was set up), per the kernel.
    pub quiet_for: Duration,
}

/// One look at the process's sockets.
#[derive(Debug, Default)]
pub struct Scan {
    /// Connected TCP sockets, one entry per connection.
    pub connections: Vec<OwnSocket>,
    /// Inodes of every socket, connected or not: a connection that has been shut down has no
    /// peer any more, but its descriptors stay until their owner closes them.
    pub all_sockets: HashSet<u64>,
}

/// Lists the process's connected TCP sockets, keeping a spare descriptor for hard times.
pub struct Scanner {
    spare: Option<File>,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner::new()
    }
}

impl Scanner {
    pub fn new() -> Scanner {
        Scanner {
            spare: open_spare(),
        }
    }

    /// The sockets of this process. Fails only when the descriptor list cannot be read even
    /// with the spare descriptor given up.
    pub fn scan(&mut self) -> io::Result<Scan> {
        let listing = match std::fs::read_dir("/proc/self/fd") {
            Ok(listing) => listing,
            Err(error) if out_of_descriptors(&error) && self.spare.is_some() => {
                self.spare = None;
                let listing = std::fs::read_dir("/proc/self/fd");
                listing?
            }
            Err(error) => return Err(error),
        };
        let descriptors: Vec<c_int> = listing
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
            .collect();
        // The listing's own descriptor is closed now, so the spare can be taken back (if
        // descriptors are still short, the next scan tries again).
        if self.spare.is_none() {
            self.spare = open_spare();
        }
        let mut scan = Scan::default();
        for fd in descriptors {
            let Some(inode) = socket_inode(fd) else {
                continue;
            };
            if scan.all_sockets.insert(inode) {
                scan.connections.extend(describe(fd, inode));
            }
        }
        Ok(scan)
    }
}

fn open_spare() -> Option<File> {
    File::open("/dev/null").ok()
}

fn out_of_descriptors(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Describes socket `fd` if it is a connected TCP socket. Only queries: the descriptor belongs to
/// another thread and is never read, written or closed here. If it was closed and reused since
/// the listing, the answer is about the new file, which the callers tolerate (see
/// `shutdown_connection`).
fn describe(fd: c_int, inode: u64) -> Option<OwnSocket> {
    let peer = peer_address(fd)?;
    let mut unread: c_int = 0;
    // SAFETY: FIONREAD writes one int into the local passed; on a listening socket it fails
    // with EINVAL, which reads as nothing unread.
    if unsafe { libc::ioctl(fd, libc::FIONREAD as _, &mut unread) } != 0 {
        unread = 0;
    }
    Some(OwnSocket {
        fd,
        inode,
        peer,
        unread: usize::try_from(unread).unwrap_or(0),
        quiet_for: quiet_for(fd).unwrap_or(Duration::ZERO),
    })
}

/// The inode of `fd` if it is a socket.
fn socket_inode(fd: c_int) -> Option<u64> {
    // SAFETY: fstat writes only into the zeroed local; a bad descriptor makes it fail.
    let status = unsafe {
        let mut status: libc::stat = mem::zeroed();
        if libc::fstat(fd, &mut status) != 0 {
            return None;
        }
        status
    };
    (status.st_mode & libc::S_IFMT == libc::S_IFSOCK).then_some(status.st_ino as u64)
}

/// The peer of a connected IPv4 or IPv6 socket; `None` for listening and Unix sockets.
fn peer_address(fd: c_int) -> Option<SocketAddr> {
    // SAFETY: getpeername writes at most `length` bytes into the zeroed storage and updates
    // `length`; the storage is large enough for any address family.
    let (storage, length) = unsafe {
        let mut storage: libc::sockaddr_storage = mem::zeroed();
        let mut length = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        if libc::getpeername(
            fd,
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut length,
        ) != 0
        {
            return None;
        }
        (storage, length as usize)
    };
    match c_int::from(storage.ss_family) {
        libc::AF_INET if length >= mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, and it is that long.
            let address: libc::sockaddr_in =
                unsafe { *(&storage as *const libc::sockaddr_storage).cast() };
            let ip = Ipv4Addr::from(u32::from_be(address.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(address.sin_port),
            )))
        }
        libc::AF_INET6 if length >= mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let address: libc::sockaddr_in6 =
                unsafe { *(&storage as *const libc::sockaddr_storage).cast() };
            let ip = Ipv6Addr::from(address.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(address.sin6_port),
                address.sin6_flowinfo,
                address.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// How long the peer has sent nothing, from the kernel's `TCP_INFO`.
fn quiet_for(fd: c_int) -> Option<Duration> {
    // SAFETY: getsockopt writes at most `length` bytes into the zeroed struct.
    let info = unsafe {
        let mut info: libc::tcp_info = mem::zeroed();
        let mut length = mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        if libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut length,
        ) != 0
        {
            return None;
        }
        info
    };
    Some(Duration::from_millis(u64::from(info.tcpi_last_data_recv)))
}

/// Shuts down both directions of the connection behind `fd`, if `fd` still names that
/// connection: tiny_http's thread then sees end-of-stream or a write error, finishes the
/// connection and closes its descriptors. The inode check narrows the window in which a
/// descriptor closed and reused since the scan could be hit to a few microseconds; a reused
/// descriptor would at worst end an unrelated connection, never corrupt memory.
pub fn shutdown_connection(socket: &OwnSocket) -> bool {
    if socket_inode(socket.fd) != Some(socket.inode) {
        return false;
    }
    // SAFETY: shutdown only changes the state of the socket; the descriptor stays open and
    // owned by tiny_http.
    unsafe { libc::shutdown(socket.fd, libc::SHUT_RDWR) == 0 }
}

/// The loopback form of an unspecified address, for connecting to this process's own listener.
pub fn reachable(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::thread;
    use std::time::Instant;

    fn find(sockets: &[OwnSocket], peer: SocketAddr) -> Option<&OwnSocket> {
        sockets.iter().find(|socket| socket.peer == peer)
    }

    #[test]
    fn unspecified_addresses_are_reached_through_loopback() {
        let target = reachable("0.0.0.0:19999".parse().unwrap());
        assert_eq!(target, "127.0.0.1:19999".parse().unwrap());
        let target = reachable("[::]:19999".parse().unwrap());
        assert_eq!(target, "[::1]:19999".parse().unwrap());
        let target = reachable("192.168.1.2:80".parse().unwrap());
        assert_eq!(target, "192.168.1.2:80".parse().unwrap());
    }

    #[test]
    fn sees_peers_and_unread_bytes_but_not_listeners() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let listen = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(listen).unwrap();
        let (mut server, client_address) = listener.accept().unwrap();
        let mut scanner = Scanner::new();
        let sockets = scanner.scan().unwrap().connections;
        assert!(sockets
            .iter()
            .all(|socket| socket.peer != "0.0.0.0:0".parse().unwrap()));
        let accepted = find(&sockets, client_address).expect("the accepted socket is listed");
        assert_eq!(accepted.unread, 0);
        // The client's own socket is listed too, with the listener as its peer.
        assert!(find(&sockets, listen).is_some());

        client.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let sockets = scanner.scan().unwrap().connections;
            let accepted = find(&sockets, client_address).unwrap();
            if accepted.unread == 18 {
                assert!(accepted.quiet_for < Duration::from_secs(5));
                break;
            }
            assert!(Instant::now() < deadline, "unread bytes never seen");
            thread::sleep(Duration::from_millis(5));
        }
        let mut buffer = [0u8; 64];
        assert_eq!(server.read(&mut buffer).unwrap(), 18);
        let sockets = scanner.scan().unwrap().connections;
        assert_eq!(find(&sockets, client_address).unwrap().unread, 0);
    }

    #[test]
    fn shutdown_ends_a_blocked_read() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, client_address) = listener.accept().unwrap();
        let reader = thread::spawn(move || {
            let mut buffer = [0u8; 16];
            let read = server.read(&mut buffer);
            (read, server)
        });
        let mut scanner = Scanner::new();
        let sockets = scanner.scan().unwrap().connections;
        let accepted = find(&sockets, client_address).unwrap().clone();
        assert!(shutdown_connection(&accepted));
        let (read, _server) = reader.join().unwrap();
        assert_eq!(
            read.unwrap(),
            0,
            "a shut-down socket reads as end-of-stream"
        );
        // With the other end gone too there is no peer any more, but the socket is listed
        // until its descriptor is closed.
        drop(client);
        let scan = scanner.scan().unwrap();
        assert!(scan.all_sockets.contains(&accepted.inode));
    }

    #[test]
    fn a_stale_descriptor_is_not_shut_down() {
        let stale = OwnSocket {
            fd: 0,
            inode: u64::MAX,
            peer: "127.0.0.1:1".parse().unwrap(),
            unread: 0,
            quiet_for: Duration::ZERO,
        };
        assert!(!shutdown_connection(&stale));
    }
}
