//! The few system calls std has no safe wrapper for, each behind a safe function. Every
//! `unsafe` block of the relay is in this file.
//!
//! - TCP keep-alive timers and the send buffer size on accepted sockets (`setsockopt`);
//! - the file descriptor limit, raised as far as the service manager allows;
//! - glibc's heap tunables and `malloc_trim` (see [`tune_heap`]);
//! - the host's IPv4 interface addresses (`SIOCGIFCONF`) and name (`gethostname`), for the
//!   addresses the relay announces and its own HTTPS certificate names;
//! - running an `--on-event` command in a process group of its own, and killing that group.

use std::io;
use std::net::{Ipv4Addr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
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

/// A shell command started by [`spawn_shell`], leading a process group of its own.
#[derive(Debug)]
pub struct ShellChild {
    pid: libc::pid_t,
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

/// Runs `/bin/sh -c command` with `extra` added to the relay's environment (the variables
/// whose names `inherited` accepts), as the leader of a new process group, so that [`ShellChild::kill_group`] also ends what it started.
///
/// Why not `std::process::Command`: on mipsel it added over 20 KB (its environment map,
/// `posix_spawn` and pidfd paths, pipes for stdio) for the one command of `--on-event`. Here
/// everything the child needs is made before `fork`; after it, the child only calls
/// async-signal-safe functions (`setpgid`, `signal`, `execve`, `_exit`), as a multi-threaded
/// parent requires. The relay's own sockets and files are opened close-on-exec by std, so the
/// command inherits none of them.
pub fn spawn_shell(
    command: &str,
    extra: &[(&str, String)],
    inherited: fn(&[u8]) -> bool,
) -> io::Result<ShellChild> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let invalid = || io::Error::from(io::ErrorKind::InvalidInput);
    let text = |bytes: &[u8]| CString::new(bytes).map_err(|_| invalid());
    let arguments = [text(b"sh")?, text(b"-c")?, text(command.as_bytes())?];
    let mut environment = Vec::new();
    for (name, value) in std::env::vars_os() {
        if inherited(name.as_bytes())
            && !extra
                .iter()
                .any(|(key, _)| name.as_bytes() == key.as_bytes())
        {
            let mut pair = name.as_bytes().to_vec();
            pair.push(b'=');
            pair.extend_from_slice(value.as_bytes());
            environment.push(text(&pair)?);
        }
    }
    for (name, value) in extra {
        environment.push(text(format!("{name}={value}").as_bytes())?);
    }
    let shell = text(b"/bin/sh")?;
    let mut argv: Vec<*const libc::c_char> = arguments.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = environment.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: fork has no preconditions. In the child only async-signal-safe functions run,
    // on pointers into the vectors above, which stay alive in both processes until execve.
    // SIGPIPE goes back to its default: the relay ignores it, and an ignored signal would
    // stay ignored across execve (std's Command resets it the same way).
    unsafe {
        match libc::fork() {
            -1 => Err(io::Error::last_os_error()),
            0 => {
                libc::setpgid(0, 0);
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                libc::execve(shell.as_ptr(), argv.as_ptr(), envp.as_ptr());
                libc::_exit(127)
            }
            pid => {
                // Also from the parent: the group must exist before a kill could be sent to
                // it, whichever process runs first (EACCES once the child has exec'd is fine).
                libc::setpgid(pid, pid);
                Ok(ShellChild { pid })
            }
        }
    }
}

impl ShellChild {
    pub fn id(&self) -> u32 {
        self.pid as u32
    }

    /// How the child ended, or `None` while it runs.
    pub fn try_wait(&self) -> io::Result<Option<Exit>> {
        self.wait_with(libc::WNOHANG)
    }

    /// Waits for the child to end, and reaps it.
    pub fn wait(&self) -> io::Result<Exit> {
        loop {
            if let Some(exit) = self.wait_with(0)? {
                return Ok(exit);
            }
        }
    }

    fn wait_with(&self, flags: libc::c_int) -> io::Result<Option<Exit>> {
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid writes only the local status; the pid is our own child's.
        match unsafe { libc::waitpid(self.pid, &mut status, flags) } {
            0 => Ok(None),
            -1 => {
                let error = io::Error::last_os_error();
                if error.kind() == io::ErrorKind::Interrupted {
                    Ok(None)
                } else {
                    Err(error)
                }
            }
            _ if libc::WIFEXITED(status) => Ok(Some(Exit::Code(libc::WEXITSTATUS(status)))),
            _ => Ok(Some(Exit::Signal(libc::WTERMSIG(status)))),
        }
    }

    /// Sends SIGKILL to the child's whole process group: `sh -c` and anything it started,
    /// such as a `curl` that hangs, end together.
    pub fn kill_group(&self) -> io::Result<()> {
        // SAFETY: kill takes plain integers; a negative pid names the child's process group.
        if unsafe { libc::kill(-self.pid, libc::SIGKILL) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
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

/// The IPv4 addresses of the host's interfaces that are up (`SIOCGIFCONF`, then
/// `SIOCGIFFLAGS` for each), each once. Not `getifaddrs`: musl's asks netlink, which qemu-user
/// does not translate for big-endian MIPS (it loops for ever there), and the systemd unit would
/// have to allow `AF_NETLINK`. (IPv6 addresses come from `/proc/self/net/if_inet6`, which
/// needs no system call of its own.)
pub fn ipv4_interface_addresses() -> io::Result<Vec<Ipv4Addr>> {
    const MOST_INTERFACES: usize = 64;
    // SAFETY: a plain socket call; the descriptor is owned (and closed) by `socket` below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor nothing else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data for which all zeroes is a valid value.
    let mut requests: [libc::ifreq; MOST_INTERFACES] = unsafe { std::mem::zeroed() };
    let mut conf = libc::ifconf {
        ifc_len: libc::c_int::try_from(std::mem::size_of_val(&requests)).unwrap_or(0),
        ifc_ifcu: libc::__c_anonymous_ifc_ifcu {
            ifcu_req: requests.as_mut_ptr(),
        },
    };
    // SAFETY: SIOCGIFCONF writes at most `ifc_len` bytes of ifreq records into `requests`,
    // which outlives the call, and sets `ifc_len` to what it wrote.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFCONF as _, &mut conf) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let count = usize::try_from(conf.ifc_len).unwrap_or(0) / std::mem::size_of::<libc::ifreq>();
    let mut addresses = Vec::new();
    for request in &requests[..count.min(MOST_INTERFACES)] {
        // SAFETY: SIOCGIFCONF fills ifru_addr of each record it returns.
        let address = unsafe { request.ifr_ifru.ifru_addr };
        if i32::from(address.sa_family) != libc::AF_INET {
            continue;
        }
        // SAFETY: an AF_INET sockaddr is a sockaddr_in; both are plain data of this size.
        let v4: libc::sockaddr_in = unsafe { std::mem::transmute_copy(&address) };
        let mut flags = libc::ifreq {
            ifr_name: request.ifr_name,
            // SAFETY: all zeroes is a valid union value; SIOCGIFFLAGS fills ifru_flags.
            ifr_ifru: unsafe { std::mem::zeroed() },
        };
        // SAFETY: SIOCGIFFLAGS reads the name and writes the flags of `flags`, which it owns.
        let asked = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut flags) };
        // SAFETY: filled by the call above when it succeeded.
        let up = asked == 0
            && (unsafe { flags.ifr_ifru.ifru_flags } & libc::IFF_UP as libc::c_short) != 0;
        let address = Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr));
        if up && !addresses.contains(&address) {
            addresses.push(address);
        }
    }
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
    fn a_shell_command_gets_its_environment_and_its_exit_is_seen() {
        let child = spawn_shell(
            "test \"$SP_TEST\" = 'a b' && test -n \"$PATH\" && exit 3",
            &[("SP_TEST", "a b".to_string())],
            |_| true,
        )
        .unwrap();
        assert_eq!(child.wait().unwrap(), Exit::Code(3));
        let sleeper = spawn_shell("sleep 30", &[], |_| true).unwrap();
        assert_eq!(sleeper.try_wait().unwrap(), None);
        sleeper.kill_group().unwrap();
        assert_eq!(sleeper.wait().unwrap(), Exit::Signal(libc::SIGKILL));
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
