//! Reusable request-handler threads.
//!
//! Every request runs on a thread of its own (the design is thread per connection), but a
//! phone pushing 15 frames a second sends 15 requests a second, and starting and ending a
//! thread for each costs more than the request itself: stack mapping and unmapping, and on a
//! multi-core router the TLB shoot-downs that unmapping sends to the other cores. So finished
//! handler threads wait a while for the next request before they exit.
//!
//! The hand-over goes through a zero-capacity channel: a send succeeds only when an idle
//! thread is already waiting to receive, so a request is either taken by a waiting thread at
//! that instant or given to a new one. There is no queue in which a request could wait for a
//! thread that never comes (tiny_http's own pool has exactly that race; see `pool_nudge`).

use std::io;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::Mutex;

/// A request handler, ready to run.
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// An idle thread exits after waiting this long for work.
pub const IDLE_EXIT: Duration = Duration::from_secs(5);

pub struct HandlerPool {
    idle_threads: Sender<Job>,
    work: Receiver<Job>,
    stack_bytes: usize,
}

impl HandlerPool {
    pub fn new(stack_bytes: usize) -> HandlerPool {
        let (idle_threads, work) = crossbeam_channel::bounded(0);
        HandlerPool {
            idle_threads,
            work,
            stack_bytes,
        }
    }

    /// Runs `job` on an idle handler thread, or on a new one if none is waiting. If a new
    /// thread cannot be started (the process is at its thread or memory limit), waits up to
    /// `patience` for a busy thread to become free; the job comes back with the error only
    /// when none did.
    pub fn run(&self, job: Job, patience: Duration) -> Result<(), (io::Error, Job)> {
        let job = match self.idle_threads.try_send(job) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => job,
        };
        let work = self.work.clone();
        // The job travels into the new thread through this slot, so that it can be taken back
        // if the thread never starts.
        let handed = Arc::new(Mutex::new(Some(job)));
        let for_thread = Arc::clone(&handed);
        let started = thread::Builder::new()
            .name("sp-handler".into())
            .stack_size(self.stack_bytes)
            .spawn(move || {
                if let Some(job) = for_thread.lock().take() {
                    job();
                }
                while let Ok(next) = work.recv_timeout(IDLE_EXIT) {
                    next();
                }
            });
        let error = match started {
            Ok(_) => return Ok(()),
            Err(error) => error,
        };
        let Some(job) = handed.lock().take() else {
            return Ok(());
        };
        log::warn!("cannot start a handler thread ({error}); waiting for a free one");
        self.idle_threads
            .send_timeout(job, patience)
            .map_err(|refused| (error, refused.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn runs_jobs_and_reuses_idle_threads() {
        let pool = HandlerPool::new(64 * 1024);
        let (done, finished) = mpsc::channel();
        for round in 0..3 {
            let done = done.clone();
            pool.run(
                Box::new(move || {
                    done.send((round, thread::current().id())).unwrap();
                }),
                Duration::ZERO,
            )
            .unwrap_or_else(|(error, _)| panic!("{error}"));
            let (got, _) = finished.recv_timeout(Duration::from_secs(5)).unwrap();
            assert_eq!(got, round);
        }
        // With jobs run one after another, an idle thread is usually waiting and reused; the
        // guarantee that matters is that every job ran, checked above.
    }

    #[test]
    fn busy_threads_do_not_delay_new_jobs() {
        let pool = HandlerPool::new(64 * 1024);
        let (release, blocked) = mpsc::channel::<()>();
        pool.run(
            Box::new(move || {
                let _ = blocked.recv();
            }),
            Duration::ZERO,
        )
        .unwrap_or_else(|(error, _)| panic!("{error}"));
        let (done, finished) = mpsc::channel();
        pool.run(Box::new(move || done.send(()).unwrap()), Duration::ZERO)
            .unwrap_or_else(|(error, _)| panic!("{error}"));
        finished
            .recv_timeout(Duration::from_secs(5))
            .expect("a second job runs while the first is still busy");
        release.send(()).unwrap();
    }

    #[test]
    fn a_panicking_job_does_not_stop_the_pool() {
        let pool = HandlerPool::new(64 * 1024);
        let (done, finished) = mpsc::channel();
        let guard_dropped = Arc::new(Mutex::new(false));
        struct SetOnDrop(Arc<Mutex<bool>>);
        impl Drop for SetOnDrop {
            fn drop(&mut self) {
                *self.0.lock() = true;
            }
        }
        let guard = SetOnDrop(Arc::clone(&guard_dropped));
        pool.run(
            Box::new(move || {
                let _guard = guard;
                panic!("a handler bug");
            }),
            Duration::ZERO,
        )
        .unwrap_or_else(|(error, _)| panic!("{error}"));
        for _ in 0..3 {
            let done = done.clone();
            pool.run(Box::new(move || done.send(()).unwrap()), Duration::ZERO)
                .unwrap_or_else(|(error, _)| panic!("{error}"));
            finished
                .recv_timeout(Duration::from_secs(5))
                .expect("jobs still run after a panic");
        }
        // What the panicking job held was released as it unwound.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !*guard_dropped.lock() {
            assert!(std::time::Instant::now() < deadline, "guard never dropped");
            thread::sleep(Duration::from_millis(5));
        }
    }
}
