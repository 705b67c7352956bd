//! Attack 3: viewers that never read, and viewers that read about 10 KB/s.
//!
//! A stalled viewer (a frozen browser tab) fills its socket buffers and then blocks the
//! relay's write; `--write-timeout` is what frees its thread. So a stalled viewer should be
//! dropped about (the relay's send buffer + the viewer's receive buffer) / stream rate +
//! write timeout after it connects. The stalled viewers here ask for a small receive buffer
//! ([`STALLED_RECEIVE_BUFFER`], set before connecting so that the window the viewer
//! advertises matches it), which makes that time depend on the relay's send buffer and its
//! timeout, not on how far the kernel's autotuning lets a loopback receive buffer grow. They
//! are held until the relay has closed every one of them or the scale's bound passes, and two
//! times are measured from when they connected: when the relay's viewer count (`/api/devices`)
//! no longer includes them, which is when their streams ended and their viewer slots were
//! freed, and when the relay let go of each connection: its end is gone from `/proc/net/tcp`
//! or orphaned, which is what closing its descriptor does (tiny_http may keep a connection
//! open after its response failed, waiting for a next request until `--request-timeout`). All
//! of them must be closed within the bound, and the relay's viewer count must then show no
//! ghosts.
//!
//! A slow viewer (bad Wi-Fi) keeps accepting a little, so it must be served the newest frame
//! when it can take one, without holding up anybody else; it is loadgen's own behaviour.

use std::fs;
use std::io::{self, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::thread;
use std::time::{Duration, Instant};

use crate::http::{self, Target};
use crate::load::{device_id, Shape, FPS, FRAME_BYTES};
use crate::probe;
use crate::scale::Scale;
use crate::trial::{self, Outcome, Row, Subject};
use crate::viewer::Behaviour;

/// What a slow viewer reads per second.
const SLOW_BYTES_PER_SECOND: usize = 10 * 1024;
/// `SO_RCVBUF` asked for on a stalled viewer's socket (Linux doubles it for bookkeeping).
const STALLED_RECEIVE_BUFFER: libc::c_int = 16 * 1024;
/// Between two looks at which stalled viewers the relay still holds.
const POLL: Duration = Duration::from_millis(100);
/// Between two looks at the relay's viewer count while it still counts stalled viewers.
const COUNT_POLL: Duration = Duration::from_millis(250);
/// How long the relay's viewer count may take to catch up with closed connections.
const COUNT_SETTLES_WITHIN: Duration = Duration::from_secs(3);

pub fn stalled_and_slow(scale: &Scale) -> Row {
    let relay = trial::start_relay(scale);
    let subject = Subject::new(relay.pid(), relay.addr);
    let what = format!(
        "{} viewers request the stream and never read (receive buffer {} KiB asked), held until \
         the relay drops them (at most {} s); {} read ~10 KB/s for {} s",
        scale.stalled,
        STALLED_RECEIVE_BUFFER / 1024,
        scale.stalled_bound.as_secs(),
        scale.slow,
        scale.viewers_hold.as_secs()
    );
    trial::run(
        3,
        "stalled and slow viewers",
        what,
        &subject,
        Shape::NORMAL,
        scale,
        |context| {
            let shape = context.load.shape;
            let target = context.target();
            let started = Instant::now();
            let mut stalled: Vec<StalledViewer> = (0..scale.stalled)
                .map(|i| StalledViewer::open(target, i % shape.devices))
                .collect();
            let slow = (0..scale.slow).map(|i| (Behaviour::Slow, i % shape.devices, 200 + i));
            let slow_run = context.load.viewers(slow, SLOW_BYTES_PER_SECOND);
            let mut queues = Queues::default();
            let others = u64::from(shape.devices * shape.viewers) + u64::from(scale.slow);
            let mut uncounted: Option<Duration> = None;
            let mut next_count = started;
            loop {
                let table = TcpTable::read();
                for viewer in &mut stalled {
                    viewer.check(&table, target.addr, &mut queues);
                }
                let left = stalled.iter().filter(|v| v.held()).count();
                let elapsed = started.elapsed();
                if uncounted.is_none() && Instant::now() >= next_count {
                    next_count += COUNT_POLL;
                    if listed_viewers(target).is_some_and(|listed| listed <= others) {
                        uncounted = Some(elapsed);
                    }
                }
                if (left == 0 && elapsed >= scale.viewers_hold) || elapsed >= scale.stalled_bound {
                    break;
                }
                thread::sleep(POLL);
            }
            let waited = started.elapsed();
            let figures = slow_run.finish();
            let connected = stalled.iter().filter(|v| v.connected()).count();
            let left = stalled.iter().filter(|v| v.held()).count();
            let mut times: Vec<Duration> = stalled.iter().filter_map(|v| v.dropped).collect();
            times.sort();
            let mut failures = Vec::new();
            let mut findings = Vec::new();
            if connected < stalled.len() {
                let refusals: Vec<String> = stalled
                    .iter()
                    .filter(|v| !v.connected())
                    .map(|v| v.answer.clone())
                    .collect();
                findings.push(format!(
                    "{} of {} stalled viewers were not streamed to: {refusals:?}",
                    stalled.len() - connected,
                    stalled.len()
                ));
            }
            if left > 0 {
                failures.push(format!(
                    "{left} of {connected} stalled viewers still held by the relay after {:.0} s \
                     (--write-timeout {} s)",
                    waited.as_secs_f64(),
                    scale.write_timeout.as_secs()
                ));
            }
            drop(stalled);
            // The slow viewers have finished too: only the normal ones are left.
            let expected = u64::from(shape.devices * shape.viewers);
            let listed = settled_viewer_count(target, expected);
            match listed {
                Some(listed) if listed > expected => failures.push(format!(
                    "the relay still listed {listed} viewers {} s after the stalled ones were \
                     gone ({expected} connected)",
                    COUNT_SETTLES_WITHIN.as_secs()
                )),
                Some(_) => {}
                None => failures.push("/api/devices did not answer after the hold".to_string()),
            }
            let counted = match uncounted {
                Some(after) => format!(
                    "stalled viewers dropped after {:.1} s (left the relay's viewer count)",
                    after.as_secs_f64()
                ),
                None => format!(
                    "the relay still counted stalled viewers after {:.0} s",
                    waited.as_secs_f64()
                ),
            };
            let closed = match (times.first(), times.last()) {
                (Some(first), Some(last)) if left == 0 => format!(
                    "their connections closed after {:.1}–{:.1} s",
                    first.as_secs_f64(),
                    last.as_secs_f64()
                ),
                (Some(first), Some(last)) => format!(
                    "{} of {connected} connections closed (after {:.1}–{:.1} s), {left} still \
                     held after {:.0} s",
                    times.len(),
                    first.as_secs_f64(),
                    last.as_secs_f64(),
                    waited.as_secs_f64()
                ),
                _ => format!(
                    "no stalled connection closed within {:.0} s",
                    waited.as_secs_f64()
                ),
            };
            let seconds = waited.as_secs_f64();
            Outcome {
                notes: format!(
                    "{counted}, {closed}; {}; relay listed {} viewers afterwards ({expected} \
                     connected); slow viewers got {:.2} parts/s each; their errors: {}",
                    queues.describe(scale.write_timeout),
                    listed.map_or("?".to_string(), |n| n.to_string()),
                    figures.parts as f64 / seconds / f64::from(scale.slow.max(1)),
                    figures.errors
                ),
                failures,
                findings,
                ..Outcome::default()
            }
        },
    )
}

/// A viewer that sent its request and never reads.
struct StalledViewer {
    stream: Option<TcpStream>,
    /// Its local port, which names the connection in `/proc/net/tcp`.
    port: u16,
    opened: Instant,
    /// The status the relay answered (peeked, never read), or what went wrong.
    answer: String,
    /// How long after connecting the relay let go of it.
    dropped: Option<Duration>,
    /// The receive buffer the kernel gave the socket.
    receive_buffer: Option<usize>,
}

impl StalledViewer {
    fn open(target: &Target, device: u32) -> StalledViewer {
        let opened = Instant::now();
        let failed = |answer: String| StalledViewer {
            stream: None,
            port: 0,
            opened,
            answer,
            dropped: None,
            receive_buffer: None,
        };
        let stream = match connect_with_receive_buffer(target.addr, STALLED_RECEIVE_BUFFER) {
            Ok(stream) => stream,
            Err(error) => return failed(format!("connect {}", http::failure_kind(&error))),
        };
        let request = http::stream_request(target, &device_id(device));
        let prepared = stream
            .set_write_timeout(Some(http::IO_TIMEOUT))
            .and_then(|()| stream.set_read_timeout(Some(http::IO_TIMEOUT)))
            .and_then(|()| (&stream).write_all(&request))
            .and_then(|()| stream.local_addr());
        let port = match prepared {
            Ok(local) => local.port(),
            Err(error) => return failed(format!("send {}", http::failure_kind(&error))),
        };
        let answer = peek_status(&stream);
        let receive_buffer = receive_buffer(&stream);
        StalledViewer {
            stream: (answer == "200").then_some(stream),
            port,
            opened,
            answer,
            dropped: None,
            receive_buffer,
        }
    }

    /// Whether the relay streams to it (answered 200).
    fn connected(&self) -> bool {
        self.answer == "200"
    }

    /// Whether the relay still holds it.
    fn held(&self) -> bool {
        self.connected() && self.dropped.is_none()
    }

    fn check(&mut self, table: &TcpTable, relay: SocketAddr, queues: &mut Queues) {
        if !self.held() {
            return;
        }
        let relay_end = table.find(relay.port(), self.port);
        if let Some(entry) = relay_end {
            queues.relay = queues.relay.max(entry.tx_queue);
        }
        if let Some(entry) = table.find(self.port, relay.port()) {
            queues.ours = queues.ours.max(entry.rx_queue);
        }
        if let Some(buffer) = self.receive_buffer {
            queues.receive_buffer = buffer;
        }
        // A descriptor closed with unsent data leaves an orphan (inode 0) behind to finish the
        // connection; the relay no longer holds it.
        let still_held = matches!(relay_end, Some(entry) if entry.inode != 0);
        if !still_held {
            self.dropped = Some(self.opened.elapsed());
            // Closing our end now lets the orphan go as well.
            self.stream = None;
        }
    }
}

/// A TCP connection to `addr` whose receive buffer is set to `bytes` before the handshake,
/// so that the window it advertises is sized by it from the start.
fn connect_with_receive_buffer(addr: SocketAddr, bytes: libc::c_int) -> io::Result<TcpStream> {
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
fn receive_buffer(stream: &TcpStream) -> Option<usize> {
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

/// The status of the relay's answer, peeked without reading it (the viewer must stay stalled):
/// `200`, another status, or what went wrong.
fn peek_status(stream: &TcpStream) -> String {
    const STATUS_LINE_START: usize = "HTTP/1.1 200".len();
    let deadline = Instant::now() + http::IO_TIMEOUT;
    let mut buf = [0u8; STATUS_LINE_START];
    loop {
        match stream.peek(&mut buf) {
            Ok(0) => return "closed".to_string(),
            Ok(n) if n == buf.len() => {
                let text = String::from_utf8_lossy(&buf);
                return match text.split_whitespace().nth(1) {
                    Some(code) if text.starts_with("HTTP/") => code.to_string(),
                    _ => format!("not HTTP: {text:?}"),
                };
            }
            Ok(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            Ok(_) => return "partial status line".to_string(),
            Err(error) => return http::failure_kind(&error).to_string(),
        }
    }
}

/// The biggest queues seen on stalled connections: what the relay had queued to send on its
/// end, and what sat unread in ours. Together they are what the relay could push into a
/// stalled viewer before its write blocked.
#[derive(Debug, Default)]
struct Queues {
    relay: u64,
    ours: u64,
    receive_buffer: usize,
}

impl Queues {
    /// The measured queues and the drop time they predict: the time to fill them at the
    /// stream's rate plus one `--write-timeout`, or two when the write that blocks has sent
    /// part of a frame first (the timeout then ends that write with a short count, and the
    /// rest of the frame waits out a second one).
    fn describe(&self, write_timeout: Duration) -> String {
        let rate = (FRAME_BYTES as u64 * u64::from(FPS)) as f64;
        let fill = (self.relay + self.ours) as f64 / rate;
        let timeout = write_timeout.as_secs_f64();
        format!(
            "per stalled viewer the relay queued up to {} KiB and ours held {} KiB unread \
             (receive buffer {} KiB): {fill:.1} s to fill at {} KB/s, so a drop is predicted \
             after {:.1}–{:.1} s with --write-timeout {} s",
            self.relay / 1024,
            self.ours / 1024,
            self.receive_buffer / 1024,
            rate as u64 / 1000,
            fill + timeout,
            fill + 2.0 * timeout,
            write_timeout.as_secs()
        )
    }
}

/// One connection in `/proc/net/tcp`, as much of it as is needed here.
#[derive(Debug, Clone, Copy)]
struct TcpEntry {
    local_port: u16,
    remote_port: u16,
    tx_queue: u64,
    rx_queue: u64,
    /// 0 once no process holds the socket (an orphan finishing its close, or TIME_WAIT).
    inode: u64,
}

/// The IPv4 TCP connections of this network namespace, which the relay on loopback shares.
struct TcpTable(Vec<TcpEntry>);

impl TcpTable {
    fn read() -> TcpTable {
        let text = fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        TcpTable(text.lines().skip(1).filter_map(parse_tcp_line).collect())
    }

    /// The end of a loopback connection whose local port is `local` and remote port `remote`.
    fn find(&self, local: u16, remote: u16) -> Option<TcpEntry> {
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

/// The relay's viewer count once it is at most `expected`, or the last count after
/// [`COUNT_SETTLES_WITHIN`]; `None` if `/api/devices` does not answer.
fn settled_viewer_count(target: &Target, expected: u64) -> Option<u64> {
    let deadline = Instant::now() + COUNT_SETTLES_WITHIN;
    loop {
        let listed = listed_viewers(target);
        match listed {
            Some(listed) if listed > expected && Instant::now() < deadline => thread::sleep(POLL),
            _ => return listed,
        }
    }
}

/// The sum of every device's `viewers` in `/api/devices`.
pub fn listed_viewers(target: &Target) -> Option<u64> {
    let (status, body) = probe::get(target, "/api/devices").ok()?;
    if status != 200 {
        return None;
    }
    let devices: serde_json::Value = serde_json::from_slice(&body).ok()?;
    Some(
        devices
            .as_array()?
            .iter()
            .filter_map(|device| device["viewers"].as_u64())
            .sum(),
    )
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
    fn a_stalled_socket_gets_the_small_receive_buffer() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream =
            connect_with_receive_buffer(listener.local_addr().unwrap(), STALLED_RECEIVE_BUFFER)
                .unwrap();
        let given = receive_buffer(&stream).unwrap();
        // Linux doubles the value asked for; a kernel minimum may raise it a little.
        assert!(given >= STALLED_RECEIVE_BUFFER as usize, "{given}");
        assert!(given <= 4 * STALLED_RECEIVE_BUFFER as usize, "{given}");
        let (_accepted, peer) = listener.accept().unwrap();
        assert_eq!(peer, stream.local_addr().unwrap());
    }
}
