//! Reusable request-handler threads.
//!
//! Every request runs on a thread of its own (the design is thread per connection), but a
//! phone pushing 15 frames a second sends 15 requests a second, and starting and ending a
//! thread for each costs more than the request itself: stack mapping and unmapping, and on a
//! multi-core router the TLB shoot-downs that unmapping sends to the other cores. So finished
//! handler threads wait a while for the next request before they exit.
//!
//! Idle threads are few: a thread that finishes while [`MAX_IDLE`] others already wait exits at
//! once. The time-out alone would not shrink the pool after a burst, because the channel hands
//! work to its waiting threads in turn, so with a steady trickle of requests (a few phones
//! pushing) every one of them gets a job before its time-out, and a burst of a few hundred
//! handlers would stay forever.
//!
//! The hand-over goes through a [`HandOff`], a zero-capacity channel: a hand-over succeeds
//! only when an idle thread is already waiting to receive, so a request is either taken by a waiting thread at
//! that instant or given to a new one. There is no queue in which a request could wait for a
//! thread that never comes (tiny_http's own pool has exactly that race; see `pool_nudge`).

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use parking_lot::Mutex;

use crate::dispatch_stalls::DispatchStalls;
use crate::hand_off::HandOff;

/// A request handler, ready to run.
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// An idle thread exits after waiting this long for work.
pub const IDLE_EXIT: Duration = Duration::from_secs(5);
/// Most threads kept waiting for work: enough for a few phones' pushes to overlap.
pub const MAX_IDLE: usize = 8;

pub struct HandlerPool {
    stalls: Arc<DispatchStalls>,
    /// To idle threads, which wait in `take`.
    hand_off: Arc<HandOff<Job>>,
    idle: Arc<AtomicUsize>,
    alive: Arc<AtomicUsize>,
    stack_bytes: usize,
}

/// Counts a handler thread as alive for as long as it runs (also while it unwinds).
struct Alive(Arc<AtomicUsize>);

impl Alive {
    fn new(alive: &Arc<AtomicUsize>) -> Alive {
        alive.fetch_add(1, Ordering::AcqRel);
        Alive(Arc::clone(alive))
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl HandlerPool {
    /// A pool whose waits for a free thread are recorded in `stalls`.
    pub fn new(stack_bytes: usize, stalls: Arc<DispatchStalls>) -> HandlerPool {
        HandlerPool {
            stalls,
            hand_off: Arc::default(),
            idle: Arc::new(AtomicUsize::new(0)),
            alive: Arc::new(AtomicUsize::new(0)),
            stack_bytes,
        }
    }

    /// Handler threads running or waiting for work.
    pub fn threads(&self) -> usize {
        self.alive.load(Ordering::Acquire)
    }

    /// Runs `job` on an idle handler thread, or on a new one if none is waiting. If a new
    /// thread cannot be started (the process is at its thread or memory limit), waits up to
    /// `patience` for a busy thread to become free; the job comes back with the error only
    /// when none did.
    pub fn run(&self, job: Job, patience: Duration) -> Result<(), (io::Error, Job)> {
        let job = match self.hand_off.try_give(job) {
            Ok(()) => return Ok(()),
            Err(job) => job,
        };
        let work = Arc::clone(&self.hand_off);
        let idle = Arc::clone(&self.idle);
        let alive = Arc::clone(&self.alive);
        // The job travels into the new thread through this slot, so that it can be taken back
        // if the thread never starts.
        let handed = Arc::new(Mutex::new(Some(job)));
        let for_thread = Arc::clone(&handed);
        let started = thread::Builder::new()
            .name("sp-handler".into())
            .stack_size(self.stack_bytes)
            .spawn(move || {
                let _alive = Alive::new(&alive);
                if let Some(job) = for_thread.lock().take() {
                    job();
                }
                loop {
                    if idle.fetch_add(1, Ordering::AcqRel) >= MAX_IDLE {
                        idle.fetch_sub(1, Ordering::AcqRel);
                        break;
                    }
                    let next = work.take(IDLE_EXIT);
                    idle.fetch_sub(1, Ordering::AcqRel);
                    match next {
                        Some(job) => job(),
                        None => break,
                    }
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
        self.stalls
            .during(|| self.hand_off.give_within(job, patience))
            .map_err(|job| (error, job))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn runs_jobs_and_reuses_idle_threads() {
        let pool = HandlerPool::new(64 * 1024, Arc::default());
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
        let pool = HandlerPool::new(64 * 1024, Arc::default());
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
    fn after_a_burst_only_a_few_threads_stay_idle() {
        let pool = HandlerPool::new(64 * 1024, Arc::default());
        let (release, blocked) = mpsc::channel::<()>();
        let blocked = Arc::new(Mutex::new(blocked));
        let (done, finished) = mpsc::channel();
        let burst = 40;
        for _ in 0..burst {
            let blocked = Arc::clone(&blocked);
            let done = done.clone();
            pool.run(
                Box::new(move || {
                    let _ = blocked.lock().recv();
                    done.send(()).unwrap();
                }),
                Duration::ZERO,
            )
            .unwrap_or_else(|(error, _)| panic!("{error}"));
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while pool.threads() < burst {
            assert!(
                std::time::Instant::now() < deadline,
                "one thread per concurrent job"
            );
            thread::sleep(Duration::from_millis(5));
        }
        for _ in 0..burst {
            release.send(()).unwrap();
        }
        for _ in 0..burst {
            finished.recv_timeout(Duration::from_secs(5)).unwrap();
        }
        // A steady trickle of jobs (every 10 ms, well inside the idle time-out) must not keep
        // the whole burst alive.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while pool.threads() > MAX_IDLE {
            assert!(
                std::time::Instant::now() < deadline,
                "{} handler threads kept after the burst",
                pool.threads()
            );
            let done = done.clone();
            pool.run(Box::new(move || done.send(()).unwrap()), Duration::ZERO)
                .unwrap_or_else(|(error, _)| panic!("{error}"));
            finished.recv_timeout(Duration::from_secs(5)).unwrap();
            thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_panicking_job_does_not_stop_the_pool() {
        let pool = HandlerPool::new(64 * 1024, Arc::default());
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
