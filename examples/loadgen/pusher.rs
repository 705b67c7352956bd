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

use std::io::{self, BufReader, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::clock::Phases;
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
}

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
        let interval_ns = self.interval.as_nanos().max(1);
        let start = Instant::now() + self.phase;
        let mut connection: Option<BufReader<TcpStream>> = None;
        let mut seq = 0;
        let mut tick: u128 = 0;
        loop {
            let due =
                start + Duration::from_nanos(u64::try_from(tick * interval_ns).unwrap_or(u64::MAX));
            if !self.phases.sleep_until(due) {
                break;
            }
            // The next tick still ahead; ticks missed while a push was slow are skipped.
            tick = Instant::now().duration_since(start).as_nanos() / interval_ns + 1;
            seq += 1;
            let outcome = self.push(&mut connection, &mut frame, &head, seq);
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
                    stats.failures.add(&format!("http {}", answer.status));
                    let url = self.target.url(&path);
                    let reason = first_line(&answer.body);
                    self.readiness.failed(
                        self.index,
                        format!("{url}: HTTP {} {reason}", answer.status),
                    );
                }
                Err(error) => {
                    connection = None;
                    stats.failures.add(http::failure_kind(&error));
                    let url = self.target.url(&path);
                    self.readiness.failed(self.index, format!("{url}: {error}"));
                }
            }
        }
        stats
    }

    /// Sends one frame and reads the answer, opening the connection if needed and dropping it
    /// when the server says it will close it.
    fn push(
        &self,
        connection: &mut Option<BufReader<TcpStream>>,
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
        if response.close {
            *connection = None;
        }
        Ok(Answer {
            status: response.status,
            body,
            done,
            round_trip: u64::try_from(done.duration_since(sent).as_nanos()).unwrap_or(u64::MAX),
        })
    }
}

struct Answer {
    status: u16,
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
