//! The few system calls std has no safe wrapper for, each behind a safe function. Every
//! `unsafe` block of the relay is in this file.
//!
//! - TCP keep-alive timers and the send buffer size on accepted sockets (`setsockopt`);
//! - the file descriptor limit, raised as far as the service manager allows;
//! - glibc's heap tunables and `malloc_trim` (see [`tune_heap`]);
//! - the host's interface addresses (`getifaddrs`) and name (`gethostname`), which the
//!   relay's own HTTPS certificate names.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Turns TCP keep-alive on with the given timers, so that a peer that vanished without a FIN
/// or RST (a phone that left the Wi-Fi) is found dead after `idle + probes × interval` instead
/// of the kernel's default of over two hours.
pub fn set_keepalive(
    stream: &TcpStream,
    idle: Duration,
    interval: Duration,
    probes: u32,
) -> io::Result<()> {
    set_int(stream, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
    set_int(stream, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, seconds(idle))?;
    set_int(
        stream,
        libc::IPPROTO_TCP,
        libc::TCP_KEEPINTVL,
        seconds(interval),
    )?;
    let probes = libc::c_int::try_from(probes).unwrap_or(libc::c_int::MAX);
    set_int(stream, libc::IPPROTO_TCP, libc::TCP_KEEPCNT, probes)
}

/// Fixes the socket's send buffer at `bytes` (the kernel doubles it for its bookkeeping).
pub fn set_send_buffer(stream: &TcpStream, bytes: usize) -> io::Result<()> {
    let bytes = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    set_int(stream, libc::SOL_SOCKET, libc::SO_SNDBUF, bytes)
}

/// Makes closing the socket reset the connection at once (`SO_LINGER` with a zero timeout),
/// throwing away whatever is still queued for a peer that stopped reading: otherwise the
/// kernel keeps the socket and its send buffer (up to half a megabyte) for minutes after the
/// relay has let go of it, retrying a peer that will never take it.
pub fn set_abortive_close(stream: &TcpStream) -> io::Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the descriptor is a live socket owned by `stream` for the whole call; `linger`
    // is a live `struct linger`, the type and length SO_LINGER is defined with.
    let result = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn seconds(duration: Duration) -> libc::c_int {
    libc::c_int::try_from(duration.as_secs().max(1)).unwrap_or(libc::c_int::MAX)
}

fn set_int(
    stream: &TcpStream,
    level: libc::c_int,
    option: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the descriptor is a live socket owned by `stream` for the whole call; `value`
    // is a live `c_int`, the type and length these options are defined with.
    let result = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            level,
            option,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Raises the soft descriptor limit to the hard limit; returns the soft limit now in force.
// `rlim_t` is 32 bits on 32-bit glibc (a Pi building for itself) and 64 elsewhere.
#[allow(clippy::useless_conversion)]
pub fn raise_descriptor_limit() -> io::Result<u64> {
    // SAFETY: getrlimit and setrlimit read and write only the local struct.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
        Ok(u64::from(limit.rlim_cur))
    }
}

/// Keeps glibc's heap from holding on to memory the relay no longer uses (the Raspberry Pi
/// and desktop builds; musl, which the router builds use, is not affected):
/// - each thread that contends for the heap gets an arena of its own, up to eight per core,
///   and memory freed in one arena is not reused by another: with a thread per connection
///   that costs megabytes of fragmented heap. The relay allocates little per frame, so one
///   arena is plenty.
/// - glibc raises its mmap threshold to the size of every large block freed, so after a few
///   large frames later ones stay in the heap; a fixed 1 MiB threshold keeps phone frames
///   (30–500 KB) in the heap and anything larger mapped and returned when freed.
///
/// Call before any other thread exists.
pub fn tune_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator tunables; called while the process has one thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
    }
}

/// Returns free heap pages from anywhere in the heap to the system (glibc keeps memory freed
/// below something still in use); housekeeping calls it every few seconds.
pub fn give_back_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and only releases pages the allocator does not use.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The addresses of the host's network interfaces that are up, IPv4 and IPv6, each once, in
/// the order the system lists them.
pub fn interface_addresses() -> io::Result<Vec<IpAddr>> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list it allocates, freed below with
    // freeifaddrs; nothing of it is kept past that.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut addresses = Vec::new();
    let mut entry = list;
    while !entry.is_null() {
        // SAFETY: `entry` is a non-null node of the list getifaddrs returned, alive until
        // freeifaddrs.
        let interface = unsafe { &*entry };
        entry = interface.ifa_next;
        if interface.ifa_flags & (libc::IFF_UP as libc::c_uint) == 0 || interface.ifa_addr.is_null()
        {
            continue;
        }
        // SAFETY: ifa_addr is non-null and points at a sockaddr whose family says which of
        // the two structures it is.
        let address = unsafe {
            match i32::from((*interface.ifa_addr).sa_family) {
                libc::AF_INET => {
                    let v4 = &*(interface.ifa_addr as *const libc::sockaddr_in);
                    IpAddr::V4(Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr)))
                }
                libc::AF_INET6 => {
                    let v6 = &*(interface.ifa_addr as *const libc::sockaddr_in6);
                    IpAddr::V6(Ipv6Addr::from(v6.sin6_addr.s6_addr))
                }
                _ => continue,
            }
        };
        if !addresses.contains(&address) {
            addresses.push(address);
        }
    }
    // SAFETY: `list` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    Ok(addresses)
}

/// The host's name (`gethostname`), if it has a usable one.
pub fn host_name() -> Option<String> {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is writable for its whole length; gethostname writes at most that.
    if unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) } != 0 {
        return None;
    }
    let end = buffer.iter().position(|&byte| byte == 0)?;
    let name = std::str::from_utf8(&buffer[..end]).ok()?.trim();
    (!name.is_empty()).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn get_int(stream: &TcpStream, level: libc::c_int, option: libc::c_int) -> libc::c_int {
        let mut value: libc::c_int = 0;
        let mut length = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: a live socket, and a live c_int with its length.
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
    fn keepalive_timers_and_send_buffer_are_set() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        set_keepalive(
            &accepted,
            Duration::from_secs(30),
            Duration::from_secs(10),
            3,
        )
        .unwrap();
        set_send_buffer(&accepted, 64 * 1024).unwrap();
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
            .unwrap_or(64 * 1024);
        assert_eq!(
            get_int(&accepted, libc::SOL_SOCKET, libc::SO_SNDBUF),
            2 * (64 * 1024).min(cap) as libc::c_int
        );
    }

    #[test]
    #[allow(clippy::useless_conversion)]
    fn raising_never_lowers_the_limit() {
        let mut before: libc::rlimit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: writes only the local struct.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut before) },
            0
        );
        assert!(raise_descriptor_limit().unwrap() >= u64::from(before.rlim_cur));
    }
}
