//! Handing a job to a thread that is waiting for one, at the instant it is handed.
//!
//! The handler pool needs a zero-capacity, many-receiver channel: a hand-over succeeds only
//! when an idle thread is already waiting, so no job ever sits in a queue waiting for a thread
//! that never comes (see `handler_pool`). std's channels have a single receiver, and
//! crossbeam-channel, which has this, costs 16 KB on a MIPS router; a mutex and two condvars
//! from parking_lot (already in the binary) do the same in a page of code.
//!
//! A job handed over is promised to one waiting thread: at most as many jobs are in flight as
//! threads wait, and a thread that times out takes a job that arrived meanwhile rather than
//! leave it behind.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

pub struct HandOff<T> {
    state: Mutex<State<T>>,
    /// Signalled when a job is handed over.
    job_ready: Condvar,
    /// Signalled when a thread starts waiting.
    taker_ready: Condvar,
}

struct State<T> {
    /// Threads inside [`HandOff::take`].
    waiting: usize,
    /// Jobs handed over and not yet taken; never more than `waiting`.
    handed: VecDeque<T>,
}

impl<T> State<T> {
    fn has_free_taker(&self) -> bool {
        self.handed.len() < self.waiting
    }
}

impl<T> Default for HandOff<T> {
    fn default() -> Self {
        HandOff {
            state: Mutex::new(State {
                waiting: 0,
                handed: VecDeque::new(),
            }),
            job_ready: Condvar::new(),
            taker_ready: Condvar::new(),
        }
    }
}

impl<T> HandOff<T> {
    /// Hands `job` to a waiting thread, or gives it back if none is waiting now.
    pub fn try_give(&self, job: T) -> Result<(), T> {
        self.give_within(job, Duration::ZERO)
    }

    /// Hands `job` to a waiting thread, waiting up to `patience` for one; gives it back if
    /// none came.
    pub fn give_within(&self, job: T, patience: Duration) -> Result<(), T> {
        let deadline = Instant::now() + patience;
        let mut state = self.state.lock();
        while !state.has_free_taker() {
            if patience.is_zero()
                || self
                    .taker_ready
                    .wait_until(&mut state, deadline)
                    .timed_out()
            {
                if state.has_free_taker() {
                    break;
                }
                return Err(job);
            }
        }
        state.handed.push_back(job);
        drop(state);
        self.job_ready.notify_one();
        Ok(())
    }

    /// Waits up to `timeout` for a job.
    pub fn take(&self, timeout: Duration) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut state = self.state.lock();
        state.waiting += 1;
        self.taker_ready.notify_one();
        loop {
            if let Some(job) = state.handed.pop_front() {
                state.waiting -= 1;
                return Some(job);
            }
            if self.job_ready.wait_until(&mut state, deadline).timed_out() {
                let job = state.handed.pop_front();
                state.waiting -= 1;
                return job;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;

    #[test]
    fn nothing_is_handed_without_a_waiting_thread() {
        let hand_off = HandOff::default();
        assert_eq!(hand_off.try_give(1), Err(1));
        assert_eq!(hand_off.give_within(2, Duration::from_millis(20)), Err(2));
        assert_eq!(hand_off.take(Duration::from_millis(10)), None);
        // The timed-out taker left: still nobody to hand to.
        assert_eq!(hand_off.try_give(3), Err(3));
    }

    #[test]
    fn every_handed_job_is_taken_once() {
        let hand_off = Arc::new(HandOff::default());
        let takers: Vec<_> = (0..4)
            .map(|_| {
                let hand_off = Arc::clone(&hand_off);
                thread::spawn(move || hand_off.take(Duration::from_secs(5)))
            })
            .collect();
        for job in 0..4 {
            assert_eq!(hand_off.give_within(job, Duration::from_secs(5)), Ok(()));
        }
        let mut taken: Vec<i32> = takers
            .into_iter()
            .filter_map(|t| t.join().unwrap())
            .collect();
        taken.sort_unstable();
        assert_eq!(taken, vec![0, 1, 2, 3]);
        assert_eq!(hand_off.try_give(9), Err(9));
    }

    #[test]
    fn a_giver_waits_for_a_taker_to_arrive() {
        let hand_off = Arc::new(HandOff::default());
        let taker = {
            let hand_off = Arc::clone(&hand_off);
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(50));
                hand_off.take(Duration::from_secs(5))
            })
        };
        assert_eq!(hand_off.give_within(7, Duration::from_secs(5)), Ok(()));
        assert_eq!(taker.join().unwrap(), Some(7));
    }
}
