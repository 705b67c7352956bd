//! Connections an attack opens and holds: slowloris heads, silent request lines, pushes that
//! stop short, idle sockets against a descriptor limit.
//!
//! The point of holding them is to see whether the relay lets go by itself, so each one is
//! watched without blocking (non-blocking reads, every 250 ms): an answer (its status is
//! kept, a `408` is what a polite server sends), a close or a reset all count as the relay
//! dropping it, with the time since it was opened. Everything still open when the hold ends
//! is closed by dropping the `Held`.
//!
//! Over HTTPS each connection finishes its handshake before its first bytes go out, and is
//! then watched the same way: rustls reads the socket without blocking, an answer is
//! decrypted, and a close without `close_notify` counts as a close.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::thread;
use std::time::{Duration, Instant};

use crate::http::{self, Connection, Target};
use crate::stats::Tally;

/// How often held connections are checked for having been dropped.
const SWEEP_PERIOD: Duration = Duration::from_millis(250);

/// The next byte for a held connection: `drip(index, sent)`, `None` to send nothing.
pub type Drip<'a> = &'a dyn Fn(usize, usize) -> Option<u8>;

#[derive(Debug, Clone)]
enum Fate {
    Open,
    /// The relay sent something (the status code, or the first bytes if not HTTP).
    Answered(String, Duration),
    /// The relay closed or reset the connection without a word.
    Closed(Duration),
}

struct Conn {
    stream: Connection,
    opened: Instant,
    sent: usize,
    fate: Fate,
    /// Bytes from the relay are not an answer but the server's side of a TLS handshake that
    /// the connection will never finish: only a close or a reset counts as a drop.
    closes_only: bool,
}

/// A set of held connections.
pub struct Held {
    conns: Vec<Conn>,
    /// Connections that could not be opened, by kind.
    pub open_failures: Tally,
}

impl Held {
    /// Opens up to `count` connections and sends `first(i)` on the i-th. Stops early after
    /// `give_up_after` failures in a row (the relay no longer accepts).
    pub fn open(
        target: &Target,
        count: usize,
        connect_timeout: Duration,
        give_up_after: usize,
        first: impl Fn(usize) -> Vec<u8>,
    ) -> Held {
        let mut held = Held {
            conns: Vec::with_capacity(count),
            open_failures: Tally::default(),
        };
        let mut failures_in_a_row = 0;
        for index in 0..count {
            match open_one(target, connect_timeout, &first(index)) {
                Ok(stream) => {
                    failures_in_a_row = 0;
                    held.conns.push(Conn {
                        stream,
                        opened: Instant::now(),
                        sent: 0,
                        fate: Fate::Open,
                        closes_only: false,
                    });
                }
                Err(error) => {
                    held.open_failures.add(http::failure_kind(&error));
                    failures_in_a_row += 1;
                    if failures_in_a_row >= give_up_after {
                        let skipped = count - index - 1;
                        for _ in 0..skipped {
                            held.open_failures.add("not tried");
                        }
                        break;
                    }
                }
            }
        }
        held
    }

    /// For raw TCP to the HTTPS port: what the relay sends on these connections (its
    /// handshake flight) is read and ignored, and only its close counts as letting go.
    pub fn counting_only_closes(mut self) -> Held {
        for conn in &mut self.conns {
            conn.closes_only = true;
        }
        self
    }

    /// Adds `other`'s connections after these (their indices follow these).
    pub fn extend(&mut self, other: Held) {
        self.conns.extend(other.conns);
        self.open_failures.merge(&other.open_failures);
    }

    pub fn opened(&self) -> usize {
        self.conns.len()
    }

    pub fn still_open(&self) -> usize {
        self.conns
            .iter()
            .filter(|conn| matches!(conn.fate, Fate::Open))
            .count()
    }

    /// Holds the connections for `length` (or until the relay has dropped them all),
    /// sending the next byte of `drip` on each every `drip_every` when given.
    pub fn hold(&mut self, length: Duration, drip: Option<(Duration, &dyn Fn(usize) -> u8)>) {
        match drip {
            Some((every, byte)) => {
                self.hold_dripping(length, Some((every, &|_, sent| Some(byte(sent)))))
            }
            None => self.hold_dripping(length, None),
        }
    }

    /// [`Held::hold`] with a drip that depends on the connection: `drip(index, sent)` is the
    /// next byte for the index-th connection opened, or `None` for one that stays silent.
    pub fn hold_dripping(&mut self, length: Duration, drip: Option<(Duration, Drip)>) {
        let end = Instant::now() + length;
        let mut next_drip = Instant::now();
        loop {
            let now = Instant::now();
            if let Some((every, byte)) = drip {
                if now >= next_drip {
                    self.drip(byte);
                    next_drip = now + every;
                }
            }
            self.sweep();
            if now >= end || self.still_open() == 0 {
                return;
            }
            thread::sleep(SWEEP_PERIOD.min(end - now));
        }
    }

    /// Sends one more byte on every open connection that has one to send.
    fn drip(&mut self, byte: Drip) {
        for (index, conn) in self.conns.iter_mut().enumerate() {
            if !matches!(conn.fate, Fate::Open) {
                continue;
            }
            let Some(next) = byte(index, conn.sent) else {
                continue;
            };
            match conn.stream.write(&[next]) {
                Ok(_) => conn.sent += 1,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => conn.fate = Fate::Closed(conn.opened.elapsed()),
            }
        }
    }

    /// Notes every connection the relay has answered or closed since the last look.
    pub fn sweep(&mut self) {
        let mut buf = [0u8; 256];
        for conn in &mut self.conns {
            if !matches!(conn.fate, Fate::Open) {
                continue;
            }
            match conn.stream.read(&mut buf) {
                Ok(0) => conn.fate = Fate::Closed(conn.opened.elapsed()),
                Ok(_) if conn.closes_only => {}
                Ok(read) => {
                    conn.fate = Fate::Answered(status_of(&buf[..read]), conn.opened.elapsed())
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => conn.fate = Fate::Closed(conn.opened.elapsed()),
            }
        }
    }

    /// Statuses of the connections the relay answered, by status.
    pub fn answers(&self) -> BTreeMap<String, usize> {
        let mut answers = BTreeMap::new();
        for conn in &self.conns {
            if let Fate::Answered(status, _) = &conn.fate {
                *answers.entry(status.clone()).or_default() += 1;
            }
        }
        answers
    }

    /// `opened 500; dropped by the relay 480 (answered 408 ×470, closed silently ×10) after
    /// 10.1–12.3 s; still open 20`.
    pub fn summary(&self) -> String {
        let mut text = format!("opened {}", self.opened());
        if self.open_failures.total() > 0 {
            text += &format!(" (not opened: {})", self.open_failures);
        }
        let mut times: Vec<Duration> = Vec::new();
        let mut silent = 0;
        for conn in &self.conns {
            match conn.fate {
                Fate::Open => {}
                Fate::Answered(_, after) => times.push(after),
                Fate::Closed(after) => {
                    silent += 1;
                    times.push(after);
                }
            }
        }
        times.sort();
        let mut how: Vec<String> = self
            .answers()
            .iter()
            .map(|(status, count)| format!("answered {status} ×{count}"))
            .collect();
        if silent > 0 {
            how.push(format!("closed silently ×{silent}"));
        }
        text += &format!("; dropped by the relay: {}", times.len());
        if let (Some(first), Some(last)) = (times.first(), times.last()) {
            text += &format!(
                " ({}) after {:.1}–{:.1} s",
                how.join(", "),
                first.as_secs_f64(),
                last.as_secs_f64()
            );
        }
        text + &format!("; still open: {}", self.still_open())
    }
}

fn open_one(target: &Target, connect_timeout: Duration, first: &[u8]) -> io::Result<Connection> {
    let stream = std::net::TcpStream::connect_timeout(&target.addr, connect_timeout)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(http::IO_TIMEOUT))?;
    stream.set_write_timeout(Some(http::IO_TIMEOUT))?;
    let mut stream = http::secure(target, stream)?;
    if !first.is_empty() {
        stream.write_all(first)?;
        stream.flush()?;
    }
    stream.socket().set_nonblocking(true)?;
    Ok(stream)
}

/// The status code in the first bytes of an answer, or those bytes if they are not HTTP.
fn status_of(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut words = text.split_whitespace();
    match (words.next(), words.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/") => code.to_string(),
        _ => format!("{:?}", text.chars().take(20).collect::<String>()),
    }
}
