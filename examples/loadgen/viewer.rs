//! Synthetic viewers: one thread per stream connection, in three behaviours.
//!
//! - **Normal** viewers read as fast as the server sends, like go2rtc. Each completed part is
//!   checked for the loadgen stamp: a sequence number above the last one this viewer saw is a
//!   fresh frame and gives a latency sample (now − send time); anything else is a repeat.
//! - **Slow** viewers read about one frame's worth of bytes per second, in small reads with
//!   sleeps between them, like a phone on a bad Wi-Fi link. The server's socket buffer fills up;
//!   what matters is whether the normal viewers of the same device notice.
//! - **Stalled** viewers send the request and never read, like a browser tab that was frozen.
//!
//! A viewer whose stream fails (refused, timed out, closed) counts the failure, waits a moment
//! and reconnects, until the run stops. Streams are decoded raw or chunked, whichever the
//! server sent.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::chunked::ChunkedReader;
use crate::clock::Phases;
use crate::frames::Stamp;
use crate::http::{self, Target};
use crate::multipart::{Part, PartReader};
use crate::stats::Tally;
use crate::THREAD_STACK_BYTES;

/// Pause before reconnecting after a failure, so a refusing server is not hammered.
const RECONNECT_DELAY: Duration = Duration::from_millis(250);
/// Socket buffer of a viewer: a few frames' worth of headers and payload per read.
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// Size of one read by a slow viewer.
const SLOW_READ_BYTES: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Normal,
    Slow,
    Stalled,
}

impl Behaviour {
    pub fn name(self) -> &'static str {
        match self {
            Behaviour::Normal => "view",
            Behaviour::Slow => "slow",
            Behaviour::Stalled => "stall",
        }
    }
}

/// What one viewer measured. Frame counts and samples cover the window only; failures cover
/// the whole time the viewer ran.
#[derive(Debug)]
pub struct ViewerStats {
    pub behaviour: Behaviour,
    /// Parts with a sequence number newer than any this viewer had seen.
    pub fresh: u64,
    /// Parts repeating a frame this viewer already had.
    pub repeats: u64,
    /// Parts without a loadgen stamp (streampump's no-signal picture, for instance).
    pub unstamped: u64,
    /// Push-to-viewer latency of each fresh frame, in nanoseconds.
    pub latencies: Vec<u64>,
    /// Completed parts of any kind (what slow viewers are judged by).
    pub parts: u64,
    pub failures: Tally,
    /// Times a stream was answered 200.
    pub streams_opened: u64,
}

/// Everything a viewer thread needs.
pub struct Viewer {
    pub behaviour: Behaviour,
    pub device: u32,
    pub device_id: String,
    /// Position among the viewers of its kind on this device, for the thread name.
    pub index: u32,
    pub target: Target,
    pub frame_bytes: usize,
    pub phases: Arc<Phases>,
}

impl Viewer {
    pub fn thread_name(&self) -> String {
        format!(
            "lg-{}-{}-{}",
            self.behaviour.name(),
            self.device,
            self.index
        )
    }

    pub fn spawn(self) -> io::Result<JoinHandle<ViewerStats>> {
        thread::Builder::new()
            .name(self.thread_name())
            .stack_size(THREAD_STACK_BYTES)
            .spawn(move || self.run())
    }

    fn run(self) -> ViewerStats {
        let mut stats = ViewerStats {
            behaviour: self.behaviour,
            fresh: 0,
            repeats: 0,
            unstamped: 0,
            latencies: Vec::new(),
            parts: 0,
            failures: Tally::default(),
            streams_opened: 0,
        };
        let mut last_seq = 0;
        while !self.phases.stopping() {
            let result = match self.behaviour {
                Behaviour::Stalled => self.hold(),
                Behaviour::Normal | Behaviour::Slow => self.watch(&mut stats, &mut last_seq),
            };
            if let Err(failure) = result {
                // Failures caused by the run ending (a read cut short at stop) are not counted.
                if !self.phases.stopping() {
                    stats.failures.add(&failure);
                }
                self.phases.sleep_until(Instant::now() + RECONNECT_DELAY);
            }
        }
        stats
    }

    fn request(&self) -> io::Result<http::Connection> {
        let mut stream = http::connect(&self.target)?;
        stream.write_all(&http::stream_request(&self.target, &self.device_id))?;
        Ok(stream)
    }

    /// Sends the request and holds the connection, unread, until the run stops.
    fn hold(&self) -> Result<(), String> {
        let _stream = self
            .request()
            .map_err(|error| http::failure_kind(&error).to_string())?;
        self.phases.wait_for_stop();
        Ok(())
    }

    /// Reads one stream until it fails or the run stops.
    fn watch(&self, stats: &mut ViewerStats, last_seq: &mut u64) -> Result<(), String> {
        let kind = |error: io::Error| http::failure_kind(&error).to_string();
        let stream = self.request().map_err(kind)?;
        let source: Box<dyn Read + Send> = match self.behaviour {
            Behaviour::Slow => Box::new(Throttled::new(stream, self.frame_bytes)),
            _ => Box::new(stream),
        };
        let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, source);
        let head = http::read_response_head(&mut reader).map_err(kind)?;
        if head.status != 200 {
            return Err(format!("http {}", head.status));
        }
        stats.streams_opened += 1;
        let body: Box<dyn BufRead + Send> = if head.chunked {
            Box::new(BufReader::with_capacity(
                READ_BUFFER_BYTES,
                ChunkedReader::new(reader),
            ))
        } else {
            Box::new(reader)
        };
        let mut parts = PartReader::new(body);
        while !self.phases.stopping() {
            let part = parts.next_part().map_err(kind)?;
            let now = Instant::now();
            self.record(&part, now, stats, last_seq)?;
        }
        Ok(())
    }

    fn record(
        &self,
        part: &Part,
        now: Instant,
        stats: &mut ViewerStats,
        last_seq: &mut u64,
    ) -> Result<(), String> {
        let counted = self.phases.in_window(now);
        if !part.ends_with_eoi {
            return Err("part without EOI".to_string());
        }
        let Some(stamp) = Stamp::decode(&part.head) else {
            if counted {
                stats.unstamped += 1;
                stats.parts += 1;
            }
            return Ok(());
        };
        if stamp.device != self.device {
            return Err("frame of another device".to_string());
        }
        let fresh = stamp.seq > *last_seq;
        if fresh {
            *last_seq = stamp.seq;
        }
        if counted {
            stats.parts += 1;
            if fresh {
                stats.fresh += 1;
                let now_ns = self.phases.clock().nanos(now);
                stats.latencies.push(now_ns.saturating_sub(stamp.sent_ns));
            } else {
                stats.repeats += 1;
            }
        }
        Ok(())
    }
}

/// Reads at about `bytes_per_second`, in reads of at most [`SLOW_READ_BYTES`] with a pause
/// before each.
struct Throttled<R> {
    inner: R,
    chunk: usize,
    pause: Duration,
}

impl<R> Throttled<R> {
    fn new(inner: R, bytes_per_second: usize) -> Throttled<R> {
        let chunk = SLOW_READ_BYTES.min(bytes_per_second.max(1));
        Throttled {
            inner,
            chunk,
            pause: Duration::from_secs_f64(chunk as f64 / bytes_per_second.max(1) as f64),
        }
    }
}

impl<R: Read> Read for Throttled<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        thread::sleep(self.pause);
        let wanted = buf.len().min(self.chunk);
        self.inner.read(&mut buf[..wanted])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttled_reads_are_small_and_paced() {
        let bytes = vec![1u8; 10_000];
        let mut slow = Throttled::new(&bytes[..], 100_000);
        assert_eq!(slow.chunk, SLOW_READ_BYTES);
        assert_eq!(slow.pause, Duration::from_secs_f64(0.04096));
        let mut buf = vec![0u8; 65_536];
        assert_eq!(slow.read(&mut buf).unwrap(), SLOW_READ_BYTES);
        let tiny = Throttled::new(&bytes[..], 100);
        assert_eq!((tiny.chunk, tiny.pause), (100, Duration::from_secs(1)));
    }
}
