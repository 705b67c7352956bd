//! A connection with no socket: it plays back scripted reads and records what is written.
//!
//! The connection layer talks to its peer only through [`Wire`], so a whole exchange, split
//! into reads however a network might split it, can be run in memory: by the unit tests of
//! `connection` and by the fuzz target that checks the head parser and body readers.

use std::collections::VecDeque;
use std::io;
use std::net::Shutdown;
use std::time::Instant;

use parking_lot::Mutex;

use crate::http::input::Wire;

/// Scripted reads in, recorded writes out.
#[derive(Default)]
pub struct Script {
    reads: Mutex<VecDeque<Vec<u8>>>,
    written: Mutex<Vec<u8>>,
}

impl Script {
    /// A wire whose reads return `reads`, one piece each (an empty piece is a read timing out),
    /// then the end of the stream.
    pub fn new(reads: impl IntoIterator<Item = Vec<u8>>) -> Script {
        Script {
            reads: Mutex::new(reads.into_iter().collect()),
            written: Mutex::new(Vec::new()),
        }
    }

    /// Everything written so far.
    pub fn written(&self) -> Vec<u8> {
        self.written.lock().clone()
    }

    /// Pieces not read yet.
    pub fn unread(&self) -> usize {
        self.reads.lock().len()
    }
}

impl Wire for Script {
    fn read_by(&self, out: &mut [u8], _deadline: Instant) -> io::Result<usize> {
        let mut reads = self.reads.lock();
        let Some(piece) = reads.front_mut() else {
            return Ok(0);
        };
        if piece.is_empty() {
            reads.pop_front();
            return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
        }
        let count = piece.len().min(out.len());
        out[..count].copy_from_slice(&piece[..count]);
        piece.drain(..count);
        if piece.is_empty() {
            reads.pop_front();
        }
        Ok(count)
    }

    fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        self.written.lock().extend_from_slice(bytes);
        Ok(())
    }

    fn shutdown(&self, how: Shutdown) {
        if how != Shutdown::Write {
            self.reads.lock().clear();
        }
    }

    fn abort(&self) {}
}
