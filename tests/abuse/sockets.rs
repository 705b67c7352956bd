//! TCP details the attacks need below what `std::net` offers: a socket whose receive buffer is
//! set before it connects (so that the window it advertises is small from the first byte),
//! and the kernel's table of connections in `/proc/net/tcp`, which tells whether the relay
//! still holds its end of a connection that the client never reads from.

use std::fs;
use std::io;
use std::net::{SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A TCP connection to `addr` whose receive buffer is set to `bytes` before the handshake,
/// so that the window it advertises is sized by it from the start.
pub fn connect_with_receive_buffer(addr: SocketAddr, bytes: libc::c_int) -> io::Result<TcpStream> {
    let SocketAddr::V4(addr) = addr else {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the relay listens on IPv4 loopback",
        ));
    };
    // SAFETY: socket() takes no pointers; a non-negative result is a new descriptor that
    // nothing else owns, so OwnedFd may take it over (and close it on every early return).
    let socket = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        OwnedFd::from_raw_fd(fd)
    };
    // SAFETY: the descriptor is a live socket owned by `socket`; the value pointer and length
    // describe a live c_int, the type SO_RCVBUF is defined with.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    let address = sockaddr_in(addr);
    // SAFETY: the descriptor is a live socket; the pointer and length describe a live,
    // fully initialised sockaddr_in, which is what AF_INET sockets take.
    let result = unsafe {
        libc::connect(
            socket.as_raw_fd(),
            (&address as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    let stream = TcpStream::from(socket);
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn sockaddr_in(addr: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*addr.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// The receive buffer the kernel actually gave the socket.
pub fn receive_buffer(stream: &TcpStream) -> Option<usize> {
    let mut value: libc::c_int = 0;
    let mut length = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the descriptor is a live socket owned by `stream`; the pointers describe a live
    // c_int and its length, which getsockopt fills in.
    let result = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&mut value as *mut libc::c_int).cast(),
            &mut length,
        )
    };
    (result == 0).then(|| usize::try_from(value).ok()).flatten()
}

/// One connection in `/proc/net/tcp`, as much of it as is needed here.
#[derive(Debug, Clone, Copy)]
pub struct TcpEntry {
    pub local_port: u16,
    pub remote_port: u16,
    pub tx_queue: u64,
    pub rx_queue: u64,
    /// 0 once no process holds the socket (an orphan finishing its close, or TIME_WAIT).
    pub inode: u64,
}

/// The IPv4 TCP connections of this network namespace, which the relay on loopback shares.
pub struct TcpTable(Vec<TcpEntry>);

impl TcpTable {
    pub fn read() -> TcpTable {
        let text = fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        TcpTable(text.lines().skip(1).filter_map(parse_tcp_line).collect())
    }

    /// The end of a loopback connection whose local port is `local` and remote port `remote`.
    pub fn find(&self, local: u16, remote: u16) -> Option<TcpEntry> {
        self.0
            .iter()
            .copied()
            .find(|entry| entry.local_port == local && entry.remote_port == remote)
    }
}

/// `  12: 0100007F:1F90 0100007F:D2F4 01 00000000:00000000 ... inode ...`
fn parse_tcp_line(line: &str) -> Option<TcpEntry> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let port = |field: &str| u16::from_str_radix(field.rsplit(':').next()?, 16).ok();
    let (tx, rx) = fields.get(4)?.split_once(':')?;
    Some(TcpEntry {
        local_port: port(fields.get(1)?)?,
        remote_port: port(fields.get(2)?)?,
        tx_queue: u64::from_str_radix(tx, 16).ok()?,
        rx_queue: u64::from_str_radix(rx, 16).ok()?,
        inode: fields.get(9)?.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc_net_tcp_lines() {
        let line = "   3: 0100007F:9C41 0100007F:D2F4 01 0001F400:00000200 01:00000014 00000000  \
                    1000        0 123456 1 0000000000000000 20 4 30 10 -1";
        let entry = parse_tcp_line(line).unwrap();
        assert_eq!(entry.local_port, 0x9C41);
        assert_eq!(entry.remote_port, 0xD2F4);
        assert_eq!(entry.tx_queue, 0x1F400);
        assert_eq!(entry.rx_queue, 0x200);
        assert_eq!(entry.inode, 123456);
        assert!(parse_tcp_line("  sl  local_address rem_address   st tx_queue").is_none());
    }

    #[test]
    fn a_socket_gets_the_small_receive_buffer_it_asked_for() {
        const ASKED: libc::c_int = 16 * 1024;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = connect_with_receive_buffer(listener.local_addr().unwrap(), ASKED).unwrap();
        let given = receive_buffer(&stream).unwrap();
        // Linux doubles the value asked for; a kernel minimum may raise it a little.
        assert!(given >= ASKED as usize, "{given}");
        assert!(given <= 4 * ASKED as usize, "{given}");
        let (_accepted, peer) = listener.accept().unwrap();
        assert_eq!(peer, stream.local_addr().unwrap());
    }
}
