//! Attack 8: clients that pipeline thousands of requests and never read an answer.
//!
//! HTTP/1.1 lets a client send its next requests before the answers come, and a server must
//! answer them in order; a client that never reads makes every answer wait for the one before
//! it. The relay reads a connection's next request only once the previous answer is out, so
//! such a client only ever holds one request's worth of the relay: one thread and one
//! descriptor, blocked in a write until `--write-timeout` ends it and the connection is
//! closed. Here [`Scale::pipelined_connections`] connections, each with a receive buffer of
//! [`RECEIVE_BUFFER`] (so that the relay's answers fill it at once), each send
//! [`Scale::pipelined_requests`] requests in one go, alternating `GET /push.html` with
//! `Accept-Encoding: gzip` (a few kilobytes each) and `GET /healthz`, and never read.
//!
//! While they hang, a fresh client's `/healthz` must be answered every time it asks, every push
//! of the normal load must succeed (besides the viewers the trial watches), and the relay may
//! hold no more than one thread per connection. Each flooding connection must then be let go by the relay within
//! twice `--write-timeout` plus [`RELEASE_MARGIN`] of its last request going out: its end of
//! the connection gone from `/proc/net/tcp`, or left to the kernel to finish (inode 0).
//!
//! Over HTTPS each flooding connection finishes its handshake first, then pipelines the same
//! requests inside TLS records and never reads again; the relay encrypts each answer whole, so
//! its write blocks and times out as on the plain port.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use crate::http::{self, Connection, Target};
use crate::load::Shape;
use crate::port::Port;
use crate::probe;
use crate::resources::Usage;
use crate::scale::Scale;
use crate::sockets::{connect_with_receive_buffer, receive_buffer, TcpTable};
use crate::trial::{self, Outcome, Row, Subject};
use crate::THREAD_STACK_BYTES;

/// `SO_RCVBUF` asked for on a flooding socket (Linux doubles it for bookkeeping).
const RECEIVE_BUFFER: libc::c_int = 4 * 1024;
/// How long one write of the flood may block before the client gives up sending.
const WRITE_PATIENCE: Duration = Duration::from_secs(2);
/// How long past twice `--write-timeout` the relay may hold a flooding connection.
const RELEASE_MARGIN: Duration = Duration::from_secs(5);
/// Between two looks at the floods and two `/healthz` of a fresh client.
const POLL: Duration = Duration::from_millis(200);
/// Threads the relay may run beyond its baseline and one per flooding connection: the fresh
/// client's `/healthz` and normal viewers reconnecting.
const THREAD_SLACK: u64 = 4;

const PUSH_PAGE: &[u8] = b"GET /push.html HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n";
const HEALTH: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";

/// One flooding connection.
struct Flood {
    /// `None` once we have closed it (the relay let go).
    stream: Option<Connection>,
    port: u16,
    /// Request bytes that went out, of how many.
    sent: usize,
    total: usize,
    /// When the last request byte went out (or the client stopped trying).
    sent_at: Instant,
    /// How long after `sent_at` the relay let go.
    released: Option<Duration>,
    receive_buffer: Option<usize>,
}

pub fn pipelined_floods(scale: &Scale, port: Port) -> Row {
    let relay = trial::start_relay_for(scale, port);
    let subject = Subject::on(&relay, port);
    let what = format!(
        "{} connections (receive buffer {} KiB asked) each pipeline {} requests \
         (`GET /push.html` gzip and `GET /healthz` in turn) and never read; a fresh `/healthz` \
         every {} ms meanwhile; each must be let go within 2 × --write-timeout + {} s",
        scale.pipelined_connections,
        RECEIVE_BUFFER / 1024,
        scale.pipelined_requests,
        POLL.as_millis(),
        RELEASE_MARGIN.as_secs()
    );
    trial::run(
        8,
        &port.title("pipelined floods"),
        what,
        &subject,
        Shape::NORMAL,
        scale,
        |context| {
            let target = context.target();
            let pid = context.subject.pid;
            let started = Instant::now();
            let flood_bytes = pipelined(scale.pipelined_requests);
            let mut floods: Vec<Flood> = thread::scope(|scope| {
                let senders: Vec<_> = (0..scale.pipelined_connections)
                    .map(|index| {
                        let bytes = &flood_bytes;
                        thread::Builder::new()
                            .name(format!("abuse-pipeline-{index}"))
                            .stack_size(THREAD_STACK_BYTES)
                            .spawn_scoped(scope, move || flood(target, bytes))
                            .expect("start a flooding thread")
                    })
                    .collect();
                senders
                    .into_iter()
                    .filter_map(|sender| sender.join().expect("a flooding thread panicked"))
                    .collect()
            });
            let mut failures = Vec::new();
            if floods.len() < scale.pipelined_connections {
                failures.push(format!(
                    "only {} of {} flooding connections could be opened",
                    floods.len(),
                    scale.pipelined_connections
                ));
            }
            let bound = 2 * scale.write_timeout + RELEASE_MARGIN;
            let limit = context.baseline.threads + floods.len() as u64 + THREAD_SLACK;
            let mut health = (0usize, Vec::<String>::new());
            let mut peak_threads = 0;
            loop {
                let table = TcpTable::read();
                for flood in &mut floods {
                    flood.check(&table, target.addr);
                }
                if let Ok(usage) = Usage::read(pid) {
                    peak_threads = peak_threads.max(usage.threads);
                }
                let waiting = floods.iter().filter(|f| f.released.is_none()).count();
                let overdue = floods
                    .iter()
                    .filter(|f| f.released.is_none())
                    .all(|f| f.sent_at.elapsed() >= bound);
                if waiting == 0 || overdue {
                    break;
                }
                check_health(target, &mut health);
                thread::sleep(POLL);
            }
            let held: Vec<&Flood> = floods.iter().filter(|f| f.released.is_none()).collect();
            if !held.is_empty() {
                failures.push(format!(
                    "{} of {} flooding connections still held by the relay {} s after their \
                     last request went out (--write-timeout {} s)",
                    held.len(),
                    floods.len(),
                    bound.as_secs(),
                    scale.write_timeout.as_secs()
                ));
            }
            let (asked, problems) = &health;
            if !problems.is_empty() {
                failures.push(format!(
                    "a fresh client's /healthz failed {} of {asked} times during the floods: {}",
                    problems.len(),
                    problems.join(", ")
                ));
            }
            let failed_pushes = context.load.log.failures(started, Instant::now());
            if failed_pushes.total() > 0 {
                failures.push(format!(
                    "pushes of the normal load failed {} times during the floods ({failed_pushes})",
                    failed_pushes.total()
                ));
            }
            if peak_threads > limit {
                failures.push(format!(
                    "the relay ran {peak_threads} threads during the floods, more than its \
                     baseline {} + one per flooding connection + {THREAD_SLACK}",
                    context.baseline.threads
                ));
            }
            Outcome {
                notes: format!(
                    "{}; fresh /healthz answered {} of {asked}; peak threads {peak_threads} \
                     (baseline {})",
                    summary(&floods),
                    asked - problems.len(),
                    context.baseline.threads
                ),
                failures,
                ..Outcome::default()
            }
        },
    )
}

/// `count` requests, the push page and the health check in turn.
fn pipelined(count: usize) -> Vec<u8> {
    (0..count)
        .flat_map(|i| if i % 2 == 0 { PUSH_PAGE } else { HEALTH }.iter().copied())
        .collect()
}

/// Opens a connection with the small receive buffer and writes `bytes` until done or until a
/// write blocks for [`WRITE_PATIENCE`] (over HTTPS, after the handshake). `None` if the
/// connection could not be opened.
fn flood(target: &Target, bytes: &[u8]) -> Option<Flood> {
    let stream = connect_with_receive_buffer(target.addr, RECEIVE_BUFFER).ok()?;
    stream.set_write_timeout(Some(WRITE_PATIENCE)).ok()?;
    stream.set_read_timeout(Some(http::IO_TIMEOUT)).ok()?;
    let port = stream.local_addr().ok()?.port();
    let receive_buffer = receive_buffer(&stream);
    let mut stream = http::secure(target, stream).ok()?;
    let mut sent = 0;
    while sent < bytes.len() {
        match stream.write(&bytes[sent..]) {
            Ok(0) => break,
            Ok(count) => sent += count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            // Blocked (the relay stopped reading) or closed: either way, done sending.
            Err(_) => break,
        }
    }
    Some(Flood {
        stream: Some(stream),
        port,
        sent,
        total: bytes.len(),
        sent_at: Instant::now(),
        released: None,
        receive_buffer,
    })
}

impl Flood {
    /// Notes whether the relay still holds its end of the connection.
    fn check(&mut self, table: &TcpTable, relay: SocketAddr) {
        if self.released.is_some() {
            return;
        }
        let held = matches!(
            table.find(relay.port(), self.port),
            Some(entry) if entry.inode != 0
        );
        if !held {
            self.released = Some(self.sent_at.elapsed());
            // Our end goes too, so the kernel can finish the connection.
            drop(self.stream.take());
        }
    }
}

/// One `/healthz` on a new connection; a problem is recorded by what went wrong.
fn check_health(target: &Target, health: &mut (usize, Vec<String>)) {
    health.0 += 1;
    match probe::get(target, "/healthz") {
        Ok((200, _)) => {}
        Ok((status, _)) => health.1.push(format!("answered {status}")),
        Err(error) => health.1.push(http::failure_kind(&error).to_string()),
    }
}

/// `sent 62 KB of 62 KB on each; let go after 2.1–2.3 s; receive buffer 8 KiB`.
fn summary(floods: &[Flood]) -> String {
    let sent: Vec<String> = floods
        .iter()
        .map(|f| format!("{} of {} KB", f.sent / 1000, f.total / 1000))
        .collect();
    let mut times: Vec<Duration> = floods.iter().filter_map(|f| f.released).collect();
    times.sort();
    let released = match (times.first(), times.last()) {
        (Some(first), Some(last)) => format!(
            "{} let go after {:.1}–{:.1} s",
            times.len(),
            first.as_secs_f64(),
            last.as_secs_f64()
        ),
        _ => "none let go".to_string(),
    };
    let buffer = floods
        .iter()
        .find_map(|f| f.receive_buffer)
        .map_or_else(String::new, |bytes| {
            format!("; receive buffer {} KiB", bytes / 1024)
        });
    format!("sent {}; {released}{buffer}", sent.join(", "))
}
