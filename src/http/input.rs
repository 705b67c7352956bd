//! A connection's read side: one fixed buffer, and every read bounded by a deadline.
//!
//! The buffer holds the request head while it is parsed, and whatever arrived behind it: the
//! start of the body, or a pipelined next request, which stays here untouched until the
//! current answer is complete. Bodies larger than what is buffered are read from the socket
//! straight into the caller's memory (a frame's place in its shared part), never through an
//! allocation sized by what a client declared.
//!
//! Each read sets the socket's receive timeout to what is left until its deadline, so a
//! client that trickles a byte now and then cannot stretch a head or a body past it.

use std::io;
use std::net::Shutdown;
use std::sync::Arc;
use std::time::Instant;

use crate::http::head::MAX_HEAD_BYTES;

/// What a connection runs over: a TCP socket (`socket::Socket`), or in tests a scripted
/// exchange (`script::Script`). Shared by the
/// connection's thread and whoever may end it from outside (`shutdown`).
pub trait Wire: Send + Sync {
    /// One read that gives up at `deadline` with `TimedOut`. `Ok(0)` at the end of the stream.
    fn read_by(&self, out: &mut [u8], deadline: Instant) -> io::Result<usize>;
    fn write_all(&self, bytes: &[u8]) -> io::Result<()>;
    /// Ends reading, writing or both at once, waking the connection's thread if it is blocked.
    fn shutdown(&self, how: Shutdown);
    /// Makes the coming close discard what the peer has not taken (a peer that stopped
    /// reading), instead of the system holding it for minutes.
    fn abort(&self);
}

/// The read side of one connection.
pub struct Input {
    wire: Arc<dyn Wire>,
    buffer: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Input {
    pub fn new(wire: Arc<dyn Wire>) -> Input {
        Input {
            wire,
            buffer: vec![0; MAX_HEAD_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    pub fn wire(&self) -> &Arc<dyn Wire> {
        &self.wire
    }

    /// Bytes received and not yet consumed.
    pub fn buffered(&self) -> &[u8] {
        &self.buffer[self.start..self.end]
    }

    pub fn consume(&mut self, count: usize) {
        self.start = (self.start + count).min(self.end);
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        }
    }

    /// Reads more into the buffer, moving what is buffered to its front first if the end is
    /// reached. `Ok(0)` at the end of the stream, or when the buffer is full.
    pub fn fill(&mut self, deadline: Instant) -> io::Result<usize> {
        if self.end == self.buffer.len() && self.start > 0 {
            self.buffer.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        if self.end == self.buffer.len() {
            return Ok(0);
        }
        let count = self.wire.read_by(&mut self.buffer[self.end..], deadline)?;
        self.end += count;
        Ok(count)
    }

    /// Reads into `out`: buffered bytes first, otherwise straight from the wire.
    pub fn read_into(&mut self, out: &mut [u8], deadline: Instant) -> io::Result<usize> {
        let buffered = self.buffered();
        if !buffered.is_empty() {
            let count = buffered.len().min(out.len());
            out[..count].copy_from_slice(&buffered[..count]);
            self.consume(count);
            return Ok(count);
        }
        self.wire.read_by(out, deadline)
    }
}
