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
//! Over HTTPS a stalled viewer finishes its handshake, sends its request and reads just enough
//! of the answer to learn its status (peeking cannot see through encryption); rustls keeps
//! whatever else came in that read, and the socket is never read again. The relay encrypts a
//! frame whole before writing it, so its write blocks and times out as on the plain port.
//!
//! A slow viewer (bad Wi-Fi) keeps accepting a little, so it must be served the newest frame
//! when it can take one, without holding up anybody else; it is loadgen's own behaviour.
//! Over HTTPS the slow viewers read over TLS too.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::http::{self, Connection, Target};
use crate::load::{device_id, Shape, FPS, FRAME_BYTES};
use crate::port::Port;
use crate::probe;
use crate::scale::Scale;
use crate::sockets::{connect_with_receive_buffer, receive_buffer, TcpTable};
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

pub fn stalled_and_slow(scale: &Scale, port: Port) -> Row {
    let relay = trial::start_relay_for(scale, port);
    let subject = Subject::on(&relay, port);
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
        &port.title("stalled and slow viewers"),
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
            let slow_run = context.load.viewers_on(target, slow, SLOW_BYTES_PER_SECOND);
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
    stream: Option<Connection>,
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
            .and_then(|()| stream.local_addr())
            .and_then(|local| Ok((local.port(), http::secure(target, stream)?)))
            .and_then(|(port, mut stream)| {
                stream.write_all(&request)?;
                stream.flush()?;
                Ok((port, stream))
            });
        let (port, mut stream) = match prepared {
            Ok(prepared) => prepared,
            Err(error) => return failed(format!("send {}", http::failure_kind(&error))),
        };
        let answer = match &mut stream {
            Connection::Plain(socket) => peek_status(socket),
            secured => read_status(secured),
        };
        let receive_buffer = receive_buffer(stream.socket());
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

/// The status of the relay's answer over TLS, read (decrypted) a few bytes at a time and no
/// further than the status code: `200`, another status, or what went wrong.
fn read_status(stream: &mut Connection) -> String {
    const STATUS_LINE_START: usize = "HTTP/1.1 200".len();
    let mut buf = [0u8; STATUS_LINE_START];
    match stream.read_exact(&mut buf) {
        Ok(()) => {
            let text = String::from_utf8_lossy(&buf);
            match text.split_whitespace().nth(1) {
                Some(code) if text.starts_with("HTTP/") => code.to_string(),
                _ => format!("not HTTP: {text:?}"),
            }
        }
        Err(error) => http::failure_kind(&error).to_string(),
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
    let devices = probe::devices(target)?;
    Some(
        devices
            .iter()
            .filter_map(|device| device["viewers"].as_u64())
            .sum(),
    )
}
