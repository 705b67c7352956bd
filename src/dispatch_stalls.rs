//! Whether dispatch is blocked, waiting for a handler slot or a handler thread.
//!
//! Dispatch takes requests from tiny_http one at a time. When every handler slot and the
//! refusal reserve are taken (`handler_slots`), or no thread can be started (`handler_pool`), it
//! waits, and requests queue up inside tiny_http where nothing else can see them. Two
//! watchers must not misread that state:
//! - the connection watch sees the queued requests' connections as idle, shuts them down after
//!   `--request-timeout`, and then sees them stay open (the queued request holds them) as if
//!   tiny_http had deadlocked on them; it must not count those as stuck;
//! - the accept supervisor's `/healthz` probe waits in the same queue, so an unanswered probe
//!   says nothing about the accept loop.
//!
//! So both blocking points record here when a wait starts and ends, and the watchers ask
//! whether dispatch was blocked recently.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

#[derive(Debug, Default)]
pub struct DispatchStalls {
    /// Waits in progress.
    waiting: AtomicUsize,
    /// When the last wait ended.
    last_end: Mutex<Option<Instant>>,
}

impl DispatchStalls {
    /// Runs `wait`, a call that blocks dispatch, recorded as a stall.
    pub fn during<T>(&self, wait: impl FnOnce() -> T) -> T {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let result = wait();
        *self.last_end.lock() = Some(Instant::now());
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        result
    }

    /// Whether dispatch is blocked now or was within `window`.
    pub fn within(&self, window: Duration) -> bool {
        if self.waiting.load(Ordering::Acquire) > 0 {
            return true;
        }
        self.last_end
            .lock()
            .is_some_and(|end| end.elapsed() < window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;

    #[test]
    fn a_wait_counts_while_it_lasts_and_for_the_window_after() {
        let stalls = Arc::new(DispatchStalls::default());
        assert!(!stalls.within(Duration::from_secs(30)));
        let (release, blocked) = std::sync::mpsc::channel::<()>();
        let waiter = {
            let stalls = Arc::clone(&stalls);
            thread::spawn(move || stalls.during(|| blocked.recv()))
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while stalls.waiting.load(Ordering::Acquire) == 0 {
            assert!(Instant::now() < deadline, "the wait never started");
            thread::yield_now();
        }
        assert!(stalls.within(Duration::ZERO));
        release.send(()).unwrap();
        waiter.join().unwrap().unwrap();
        assert!(stalls.within(Duration::from_secs(30)));
        assert!(!stalls.within(Duration::ZERO));
    }
}
