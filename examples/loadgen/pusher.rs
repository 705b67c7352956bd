//! One synthetic phone: a thread that POSTs stamped frames on a fixed schedule.
//!
//! Push k is due at start + phase + k/fps, where the phase spreads the devices evenly over one
//! push interval: real phones are not synchronised, and pushing every device in the same
//! instant would measure a burst nobody generates (each viewer's frame would queue behind the
//! fan-out of every other device). A pusher that falls behind (a slow answer) skips the ticks
//! it missed instead of sending them in a burst, as a phone's camera loop does: a burst would
//! measure the server under a load nobody generates. Pushes go over one kept-alive HTTP/1.1
//! connection, reopened after any failure. The round trip is timed from the moment the frame
//! is stamped, right before its first byte is written, to the last byte of the answer.
//!
//! A kept-alive connection that ends (a failed push, or an answer with `Connection: close`)
//! costs a reconnect, counted per pusher: a relay should keep a phone's connection for as long
//! as it keeps pushing. A caller that needs to know *when* (the abuse suite counts them per
//! phase of an attack) can pass an observer that sees every such event as it happens.

use std::io::{self, BufReader, Write};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::clock::{Phases, Ticker};
use crate::frames::Frame;
use crate::http::{self, Target};
use crate::readiness::Readiness;
use crate::stats::Tally;
use crate::THREAD_STACK_BYTES;

/// What one pusher measured.
#[derive(Debug, Default)]
pub struct PusherStats {
    /// Pushes answered 200 inside the window.
    pub accepted: u64,
    /// Round trips of those pushes, in nanoseconds.
    pub round_trips: Vec<u64>,
    /// Failures over the whole run, warm-up included, by kind.
    pub failures: Tally,
    /// Kept-alive connections lost over the whole run, by reason.
    pub reconnects: Tally,
}

/// Something that happened to a pusher, as it happens.
#[derive(Debug, Clone, Copy)]
pub enum PushEvent<'a> {
    /// The kept-alive connection ended; the next push reconnects.
    ConnectionLost(&'a str),
    /// A push was not answered 200 (connect failures included), by kind.
    Failed(&'a str),
}

/// Called with every [`PushEvent`] on the pusher's thread.
pub type PushObserver = Arc<dyn Fn(PushEvent<'_>) + Send + Sync>;

/// Why a kept-alive connection ended, when the server closed it after answering.
const CLOSED_BY_SERVER: &str = "answered with Connection: close";

/// Everything a pusher thread needs.
pub struct Pusher {
    pub index: u32,
    pub device_id: String,
    pub target: Target,
    pub frame_bytes: usize,
    pub interval: Duration,
    /// Offset of this device's push schedule within one interval.
    pub phase: Duration,
    pub phases: Arc<Phases>,
    pub readiness: Arc<Readiness>,
    pub observer: Option<PushObserver>,
}

impl Pusher {
    pub fn spawn(self) -> io::Result<JoinHandle<PusherStats>> {
        thread::Builder::new()
            .name(format!("lg-push-{}", self.index))
            .stack_size(THREAD_STACK_BYTES)
            .spawn(move || self.run())
    }

    fn run(self) -> PusherStats {
        let mut stats = PusherStats::default();
        let mut frame = Frame::new(self.frame_bytes, self.index);
        let path = format!("/pump_push/{}", self.device_id);
        let head = http::push_request_head(&self.target, &self.device_id, self.frame_bytes);
        let mut ticker = Ticker::new(Instant::now() + self.phase, self.interval);
        let mut connection: Option<BufReader<http::Connection>> = None;
        let mut seq = 0;
        loop {
            if !self.phases.sleep_until(ticker.due()) {
                break;
            }
            ticker.advance();
            seq += 1;
            let outcome = self.push(&mut connection, &mut frame, &head, seq);
            if matches!(&outcome, Ok(answer) if answer.close) {
                connection = None;
                self.note(&mut stats, PushEvent::ConnectionLost(CLOSED_BY_SERVER));
            }
            match outcome {
                Ok(Answer {
                    status: 200,
                    done,
                    round_trip,
                    ..
                }) => {
                    self.readiness.ready(self.index);
                    if self.phases.in_window(done) {
                        stats.accepted += 1;
                        stats.round_trips.push(round_trip);
                    }
                }
                Ok(answer) => {
                    self.note(
                        &mut stats,
                        PushEvent::Failed(&format!("http {}", answer.status)),
                    );
                    let url = self.target.url(&path);
                    let reason = first_line(&answer.body);
                    self.readiness.failed(
                        self.index,
                        format!("{url}: HTTP {} {reason}", answer.status),
                    );
                }
                Err(error) => {
                    // Failures caused by the run ending are not the server's doing.
                    if self.phases.stopping() {
                        break;
                    }
                    let kind = http::failure_kind(&error);
                    if connection.take().is_some() {
                        self.note(&mut stats, PushEvent::ConnectionLost(kind));
                    }
                    self.note(&mut stats, PushEvent::Failed(kind));
                    let url = self.target.url(&path);
                    self.readiness.failed(self.index, format!("{url}: {error}"));
                }
            }
        }
        stats
    }

    /// Counts `event` and passes it on to the observer.
    fn note(&self, stats: &mut PusherStats, event: PushEvent<'_>) {
        match event {
            PushEvent::ConnectionLost(why) => stats.reconnects.add(why),
            PushEvent::Failed(kind) => stats.failures.add(kind),
        }
        if let Some(observer) = &self.observer {
            observer(event);
        }
    }

    /// Sends one frame and reads the answer, opening the connection if needed. On an error the
    /// connection, if one was open, is left for the caller to count as lost.
    fn push(
        &self,
        connection: &mut Option<BufReader<http::Connection>>,
        frame: &mut Frame,
        head: &[u8],
        seq: u64,
    ) -> io::Result<Answer> {
        let reader = match connection {
            Some(reader) => reader,
            None => connection.insert(BufReader::with_capacity(4096, http::connect(&self.target)?)),
        };
        let sent = Instant::now();
        frame.stamp(self.phases.clock(), seq, sent);
        let socket = reader.get_mut();
        socket.write_all(head)?;
        socket.write_all(frame.bytes())?;
        let mut response = http::read_response_head(reader)?;
        let body = http::read_short_body(reader, &mut response)?;
        let done = Instant::now();
        Ok(Answer {
            status: response.status,
            close: response.close,
            body,
            done,
            round_trip: u64::try_from(done.duration_since(sent).as_nanos()).unwrap_or(u64::MAX),
        })
    }
}

struct Answer {
    status: u16,
    /// The server will close the connection after this answer.
    close: bool,
    body: Vec<u8>,
    done: Instant,
    round_trip: u64,
}

/// The first non-blank line of an answer, shortened: enough to say why a push was refused
/// without pasting a whole HTML error page into the message.
fn first_line(body: &[u8]) -> String {
    const LIMIT: usize = 120;
    let text = String::from_utf8_lossy(body);
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    match line.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_reasons_are_one_short_line() {
        assert_eq!(
            first_line(b"\n  busy: 32 viewers\nmore"),
            "busy: 32 viewers"
        );
        assert_eq!(first_line(b""), "");
        let long = "x".repeat(300);
        assert_eq!(first_line(long.as_bytes()).chars().count(), 121);
    }
}
