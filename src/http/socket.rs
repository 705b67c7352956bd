//! A connection's TCP socket as a [`Wire`]: reads by a deadline, writes bounded as a whole.
//!
//! The socket's send timeout (`--write-timeout`) bounds one `send`, and a `send` that moves a
//! single byte starts it afresh; a peer that takes a few bytes now and then, or none while
//! its window reopens by a crumb, would stretch one answer far past the timeout (measured: a
//! client pipelining requests without reading held its connection for 30 s with a 10 s
//! timeout). So a write gets `--write-timeout` as a whole: what does not go out in one call
//! gets what is left of it, and the write fails with `TimedOut` once it is spent. A write that
//! goes out at once, the usual case, costs a clock reading besides the `send`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use crate::http::input::Wire;
use crate::sys;

pub struct Socket {
    stream: TcpStream,
    write_timeout: Duration,
}

impl Socket {
    /// `stream` must already have `write_timeout` as its send timeout (`accept` sets it).
    pub fn new(stream: TcpStream, write_timeout: Duration) -> Socket {
        Socket {
            stream,
            write_timeout,
        }
    }
}

impl Socket {
    /// Makes every read and write return at once with what is possible (for turning a
    /// connection away without waiting on it).
    pub fn set_nonblocking(&self) -> io::Result<()> {
        self.stream.set_nonblocking(true)
    }

    /// On a non-blocking socket: what has already arrived, up to `out`'s size (0 if nothing).
    pub fn read_now(&self, out: &mut [u8]) -> usize {
        (&self.stream).read(out).unwrap_or(0)
    }

    /// The deadline a write starting now must meet (`--write-timeout` from now).
    pub fn write_deadline(&self) -> Instant {
        Instant::now() + self.write_timeout
    }

    /// Writes all of `bytes` by `deadline`, or fails with `TimedOut`: one answer written in
    /// pieces (TLS records) keeps a single deadline across them.
    pub fn write_all_by(&self, mut bytes: &[u8], deadline: Instant) -> io::Result<()> {
        let mut shortened = false;
        let result = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out"));
            }
            // What is left of the deadline, once it is less than the socket's own timeout.
            if left < self.write_timeout {
                if let Err(error) = self.stream.set_write_timeout(Some(left)) {
                    break Err(error);
                }
                shortened = true;
            }
            match (&self.stream).write(bytes) {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(count) if count == bytes.len() => break Ok(()),
                Ok(count) => bytes = &bytes[count..],
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => break Err(error),
            }
        };
        if shortened {
            // Back to the full timeout for the next write; a socket that cannot take it is
            // finished anyway.
            let _ = self.stream.set_write_timeout(Some(self.write_timeout));
        }
        result
    }
}

impl Wire for Socket {
    fn read_by(&self, out: &mut [u8], deadline: Instant) -> io::Result<usize> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
            }
            self.stream.set_read_timeout(Some(left))?;
            match (&self.stream).read(out) {
                Ok(count) => return Ok(count),
                // A receive timeout shows as EAGAIN on Linux; the loop turns it into TimedOut
                // once the deadline has really passed.
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                    ) => {}
                Err(error) => return Err(error),
            }
        }
    }

    fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        self.write_all_by(bytes, self.write_deadline())
    }

    fn shutdown(&self, how: Shutdown) {
        // A socket already shut down or reset by the peer has nothing left to end.
        let _ = self.stream.shutdown(how);
    }

    fn abort(&self) {
        if let Err(error) = sys::set_abortive_close(&self.stream) {
            log::debug!("cannot set an abortive close: {error}");
        }
    }
}
