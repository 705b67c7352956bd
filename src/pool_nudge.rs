//! Works around a lost-wakeup race in tiny_http 0.12's connection thread pool.
//!
//! tiny_http hands each accepted connection to a pool (`util/task_pool.rs`). When it sees a
//! thread waiting, it queues the connection and signals one waiter; otherwise it starts a new
//! thread. But a waiter counts as "waiting" until it has woken up and run, so when several
//! connections arrive at once (go2rtc and Home Assistant reconnecting together after a relay
//! restart, a browser opening six streams), several of them can be queued for the same single
//! waiter. The first is served; the others sit in the queue, unanswered, until some pool
//! thread finishes its current connection. Viewers and kept-alive pushers hold their
//! connections for hours, so that may be never. Ten simultaneous connections left three
//! unanswered here (`tests/bad_input.rs` reproduces it).
//!
//! The relay cannot change the pool, but it can make a pool thread finish a connection: a
//! connection to itself that closes at once. Whichever way the pool takes it (a new thread
//! that then pops the queue, or a queued entry whose signal wakes a waiter that pops the
//! oldest entry first), each such nudge gets one stranded connection served.
//!
//! Nudging blindly would have a cost: every nudge wakes an idle pool thread, and idle threads
//! only exit after 5 s without a wake-up, so steady nudges would keep the pool at its high-water
//! mark forever. So the relay nudges only when a connection is visibly stranded: a socket of
//! this process with received bytes that nobody has read, seen in two scans in a row. Served
//! connections never look like that (a thread is reading them), so in normal operation no nudge
//! is ever sent. The scans come from `own_sockets`, run by `connection_watch`'s thread.

use std::collections::HashSet;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::own_sockets::OwnSocket;

/// Most nudges sent after one scan.
const MAX_NUDGES_PER_SCAN: usize = 32;
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Remembers which connections had unread bytes at the previous scan.
#[derive(Debug, Default)]
pub struct StrandedConnections {
    previous: HashSet<u64>,
}

impl StrandedConnections {
    /// How many connections have had unread bytes in this scan and the one before: those are
    /// waiting for a pool thread, since a served connection is read as soon as bytes arrive.
    pub fn update(&mut self, sockets: &[OwnSocket]) -> usize {
        let waiting: HashSet<u64> = sockets
            .iter()
            .filter(|socket| socket.unread > 0)
            .map(|socket| socket.inode)
            .collect();
        let stranded = waiting.intersection(&self.previous).count();
        self.previous = waiting;
        stranded
    }
}

/// Gets up to `stranded` waiting connections served, one nudge each.
pub fn nudge_pool(target: SocketAddr, stranded: usize) {
    if stranded == 0 {
        return;
    }
    log::debug!("{stranded} connection(s) waiting for a pool thread; nudging");
    for _ in 0..stranded.min(MAX_NUDGES_PER_SCAN) {
        nudge(target);
    }
}

/// Connects and closes at once; the pool thread that takes it sees end-of-stream, finishes,
/// and moves on to the queue.
fn nudge(target: SocketAddr) {
    if let Err(error) = TcpStream::connect_timeout(&target, CONNECT_TIMEOUT) {
        log::debug!("pool nudge to {target} failed: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn socket(inode: u64, unread: usize) -> OwnSocket {
        OwnSocket {
            fd: 3,
            inode,
            peer: "127.0.0.1:40000".parse().unwrap(),
            unread,
            quiet_for: Duration::ZERO,
        }
    }

    #[test]
    fn a_connection_is_stranded_when_unread_in_two_scans_in_a_row() {
        let mut stranded = StrandedConnections::default();
        assert_eq!(stranded.update(&[socket(1, 10), socket(2, 0)]), 0);
        assert_eq!(stranded.update(&[socket(1, 10), socket(2, 5)]), 1);
        assert_eq!(stranded.update(&[socket(1, 0), socket(2, 5)]), 1);
        assert_eq!(stranded.update(&[socket(2, 0)]), 0);
    }
}
