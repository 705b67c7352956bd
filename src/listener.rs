//! The listening socket, with the options every accepted connection should have.
//!
//! tiny_http never touches socket options, but on Linux an accepted socket inherits options
//! set on the listening one. So the listener is built here, `TCP_NODELAY` is set on it (each
//! flushed frame leaves at once instead of waiting for Nagle's algorithm to coalesce the small
//! part header and delimiter with the next write), and tiny_http gets the ready listener.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;

/// Binds `address` and prepares the socket for serving streams.
pub fn bind(address: SocketAddr) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(address)?;
    set_flag(&listener, libc::IPPROTO_TCP, libc::TCP_NODELAY)?;
    Ok(listener)
}

fn set_flag(listener: &TcpListener, level: libc::c_int, option: libc::c_int) -> io::Result<()> {
    let enabled: libc::c_int = 1;
    // SAFETY: the fd is a live socket owned by `listener`; the value is a c_int of the
    // length given, as setsockopt expects for boolean options.
    let result = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            level,
            option,
            (&enabled as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    #[test]
    fn accepted_sockets_inherit_nodelay() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        assert!(accepted.nodelay().unwrap());
    }
}
