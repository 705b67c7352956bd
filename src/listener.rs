//! The listening socket, with the options every accepted connection should have.
//!
//! tiny_http never touches socket options, but on Linux an accepted socket inherits options
//! set on the listening one. So the listener is built here and tiny_http gets it ready:
//! - `TCP_NODELAY`: each frame leaves at once instead of waiting for Nagle's algorithm.
//! - `SO_SNDTIMEO` (`--write-timeout`): a write that cannot proceed for that long fails, so a
//!   viewer that stops reading (a frozen browser tab) is dropped and its thread freed.
//! - TCP keep-alive with short timers: a phone that vanished from the Wi-Fi (no FIN, no RST)
//!   is found dead after about [`KEEPALIVE_IDLE`] + [`KEEPALIVE_PROBES`] × [`KEEPALIVE_INTERVAL`]
//!   instead of the kernel default of over two hours.
//! - `SO_SNDBUF` ([`SEND_BUFFER_BYTES`]): Linux grows a socket's send buffer up to 4 MiB by
//!   itself, so each viewer that stops reading would pin megabytes of kernel memory (fifty
//!   frozen tabs: 200 MB, on a router with 64 MB) and take minutes to fill them before the
//!   write timeout can even start. A fixed buffer of a few frames bounds both; on a LAN it costs
//!   no throughput (the bandwidth-delay product is a few kilobytes).
//!
//! `SO_RCVTIMEO` must not be set here: on the listener it would make `accept` time out, which
//! ends tiny_http's accept loop for good.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Idle time before the first keep-alive probe.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
/// Time between probes.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// Unanswered probes before the connection is declared dead.
pub const KEEPALIVE_PROBES: u32 = 3;
/// Send buffer asked for (the kernel doubles it for its bookkeeping).
pub const SEND_BUFFER_BYTES: usize = 256 * 1024;

/// Binds `address` and prepares the socket for serving streams.
pub fn bind(address: SocketAddr, write_timeout: Duration) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(address)?;
    set_int(&listener, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)?;
    set_int(&listener, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
    set_int(
        &listener,
        libc::IPPROTO_TCP,
        libc::TCP_KEEPIDLE,
        seconds(KEEPALIVE_IDLE),
    )?;
    set_int(
        &listener,
        libc::IPPROTO_TCP,
        libc::TCP_KEEPINTVL,
        seconds(KEEPALIVE_INTERVAL),
    )?;
    set_int(
        &listener,
        libc::IPPROTO_TCP,
        libc::TCP_KEEPCNT,
        KEEPALIVE_PROBES as libc::c_int,
    )?;
    set_int(
        &listener,
        libc::SOL_SOCKET,
        libc::SO_SNDBUF,
        SEND_BUFFER_BYTES as libc::c_int,
    )?;
    set_send_timeout(&listener, write_timeout)?;
    Ok(listener)
}

fn seconds(duration: Duration) -> libc::c_int {
    libc::c_int::try_from(duration.as_secs()).unwrap_or(libc::c_int::MAX)
}

fn set_int(
    listener: &TcpListener,
    level: libc::c_int,
    option: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    set_option(listener, level, option, &value)
}

fn set_send_timeout(listener: &TcpListener, timeout: Duration) -> io::Result<()> {
    // `time_t` is 32 bits on some targets (and its width is changing in musl), so the seconds
    // are clamped to what any width holds and the field types are left to inference.
    let seconds = timeout.as_secs().min(i32::MAX as u64);
    let value = libc::timeval {
        tv_sec: seconds as _,
        tv_usec: timeout.subsec_micros() as _,
    };
    set_option(listener, libc::SOL_SOCKET, libc::SO_SNDTIMEO, &value)
}

/// `setsockopt` with a value of the C type the option expects (`c_int` for flags and counts,
/// `timeval` for timeouts).
fn set_option<T>(
    listener: &TcpListener,
    level: libc::c_int,
    option: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: the fd is a live socket owned by `listener`; `value` points to a live `T` of
    // the length given, and the callers pass the type each option is defined with.
    let result = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            level,
            option,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
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

    fn get_int(stream: &TcpStream, level: libc::c_int, option: libc::c_int) -> libc::c_int {
        let mut value: libc::c_int = 0;
        let mut length = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        let result = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                level,
                option,
                (&mut value as *mut libc::c_int).cast(),
                &mut length,
            )
        };
        assert_eq!(result, 0);
        value
    }

    #[test]
    fn accepted_sockets_inherit_every_option() {
        let timeout = Duration::from_millis(2500);
        let listener = bind("127.0.0.1:0".parse().unwrap(), timeout).unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        assert!(accepted.nodelay().unwrap());
        assert_eq!(accepted.write_timeout().unwrap(), Some(timeout));
        assert_eq!(accepted.read_timeout().unwrap(), None);
        assert_eq!(get_int(&accepted, libc::SOL_SOCKET, libc::SO_KEEPALIVE), 1);
        assert_eq!(
            get_int(&accepted, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE),
            30
        );
        assert_eq!(
            get_int(&accepted, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL),
            10
        );
        assert_eq!(get_int(&accepted, libc::IPPROTO_TCP, libc::TCP_KEEPCNT), 3);
        // Linux caps the size asked for at net.core.wmem_max and reports twice what it set.
        let cap = std::fs::read_to_string("/proc/sys/net/core/wmem_max")
            .ok()
            .and_then(|text| text.trim().parse::<usize>().ok())
            .unwrap_or(SEND_BUFFER_BYTES);
        assert_eq!(
            get_int(&accepted, libc::SOL_SOCKET, libc::SO_SNDBUF),
            2 * SEND_BUFFER_BYTES.min(cap) as libc::c_int
        );
    }
}
