//! The normal load that every attack runs against, measured in phases.
//!
//! Pushers (loadgen's: one kept-alive POST per frame) run for the whole trial, and what they
//! lose goes into a timed log ([`crate::normal_pushers`]), so a trial can count reconnects per
//! phase.
//! Viewers are loadgen's, but each phase (before, during, after an attack) gets a fresh set with its
//! own measurement window: loadgen fixes one window per run, and a phase's figures must cover
//! only that phase. The set for the next phase connects the moment the previous one is
//! stopped, so the devices are watched without a gap. Pushers and viewers share one clock, so
//! the stamp in each frame gives a true push-to-arrival latency.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::clock::{Clock, Phases, Window};
use crate::http::Target;
use crate::normal_pushers::PushLog;
use crate::pusher::{Pusher, PusherStats};
use crate::readiness::Readiness;
use crate::stats::{Samples, Tally};
use crate::viewer::{Behaviour, Viewer, ViewerStats};

/// Size of every pushed frame: a 640×480 phone JPEG.
pub const FRAME_BYTES: usize = 30_000;
/// Pushes per second per device.
pub const FPS: u32 = 15;
/// A phase's window opens this long after its viewers start, so that connecting and the
/// first (already old) frame each viewer gets are not measured.
const SETTLE: Duration = Duration::from_millis(300);
/// How long devices may take to have their first push accepted.
const FIRST_PUSH_WITHIN: Duration = Duration::from_secs(10);

/// Devices, viewers per device, and the size of each pushed frame.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub devices: u32,
    pub viewers: u32,
    pub frame_bytes: usize,
}

impl Shape {
    /// The normal load of every attack.
    pub const NORMAL: Shape = Shape {
        devices: 4,
        viewers: 4,
        frame_bytes: FRAME_BYTES,
    };
}

pub fn device_id(index: u32) -> String {
    format!("cam_{index}")
}

/// Pushers for every device, running until [`NormalLoad::stop`] (or drop).
pub struct NormalLoad {
    target: Target,
    pub shape: Shape,
    clock: Clock,
    pushing: Arc<Phases>,
    pushers: Vec<JoinHandle<PusherStats>>,
    /// Every lost connection and failed push of the pushers, with its time.
    pub log: Arc<PushLog>,
    /// When every device had its first push accepted: normal operation starts here.
    pub ready_at: Instant,
}

impl NormalLoad {
    /// Starts the pushers and returns once every device has a frame.
    pub fn start(target: &Target, shape: Shape) -> NormalLoad {
        let clock = Clock::start();
        let pushing = Arc::new(Phases::new(clock));
        let readiness = Arc::new(Readiness::new(shape.devices));
        let log = Arc::new(PushLog::default());
        let interval = Duration::from_secs(1) / FPS;
        let pushers = (0..shape.devices)
            .map(|index| {
                Pusher {
                    index,
                    device_id: device_id(index),
                    target: target.clone(),
                    frame_bytes: shape.frame_bytes,
                    interval,
                    phase: interval * index / shape.devices,
                    phases: Arc::clone(&pushing),
                    readiness: Arc::clone(&readiness),
                    observer: Some(log.observer()),
                }
                .spawn()
                .expect("start a pusher thread")
            })
            .collect();
        let mut load = NormalLoad {
            target: target.clone(),
            shape,
            clock,
            pushing,
            pushers,
            log,
            ready_at: Instant::now(),
        };
        if let Err(waiting) = readiness.wait_all(FIRST_PUSH_WITHIN) {
            panic!("devices without an accepted push after {FIRST_PUSH_WITHIN:?}: {waiting:?}");
        }
        load.ready_at = Instant::now();
        load
    }

    /// Starts the normal viewers of a new phase.
    pub fn phase(&self) -> PhaseRun {
        let viewers = (0..self.shape.devices).flat_map(|device| {
            (0..self.shape.viewers).map(move |index| (Behaviour::Normal, device, index))
        });
        self.viewers(viewers, self.shape.frame_bytes)
    }

    /// Starts viewers of the given behaviour, device and index. `bytes_per_second` is what a
    /// slow viewer reads (loadgen paces slow viewers at one frame's worth per second).
    pub fn viewers(
        &self,
        viewers: impl IntoIterator<Item = (Behaviour, u32, u32)>,
        bytes_per_second: usize,
    ) -> PhaseRun {
        self.viewers_on(&self.target, viewers, bytes_per_second)
    }

    /// [`NormalLoad::viewers`] connecting to `target` (the HTTPS port for an attack over it).
    pub fn viewers_on(
        &self,
        target: &Target,
        viewers: impl IntoIterator<Item = (Behaviour, u32, u32)>,
        bytes_per_second: usize,
    ) -> PhaseRun {
        let phases = Arc::new(Phases::new(self.clock));
        let window_start = Instant::now() + SETTLE;
        phases.set_window(Window {
            start: window_start,
            end: window_start + Duration::from_secs(365 * 24 * 3600),
        });
        let mut run = PhaseRun {
            phases,
            window_start,
            viewers: Vec::new(),
        };
        for (behaviour, device, index) in viewers {
            let viewer = Viewer {
                behaviour,
                device,
                device_id: device_id(device),
                index,
                target: target.clone(),
                frame_bytes: bytes_per_second,
                phases: Arc::clone(&run.phases),
            };
            run.viewers
                .push(viewer.spawn().expect("start a viewer thread"));
        }
        run
    }

    /// Stops the pushers and returns when they were told to stop; what they logged up to
    /// then stays in [`NormalLoad::log`].
    pub fn stop(mut self) -> Instant {
        let stopped = Instant::now();
        self.pushing.stop();
        for pusher in std::mem::take(&mut self.pushers) {
            let _ = pusher.join();
        }
        stopped
    }
}

impl Drop for NormalLoad {
    fn drop(&mut self) {
        // Threads not joined here (a test that panicked) stop by themselves within a read
        // timeout.
        self.pushing.stop();
    }
}

/// Viewers of one phase, counted from their window's start until [`PhaseRun::finish`].
pub struct PhaseRun {
    phases: Arc<Phases>,
    window_start: Instant,
    viewers: Vec<JoinHandle<ViewerStats>>,
}

impl PhaseRun {
    /// Returns once the measurement window is open.
    pub fn wait_window_start(&self) {
        self.phases.sleep_until(self.window_start);
    }

    /// Returns once the window has lasted `length`.
    pub fn wait_lasted(&self, length: Duration) {
        self.phases.sleep_until(self.window_start + length);
    }

    /// Waits until the window has lasted `length`, then finishes.
    pub fn finish_after(self, length: Duration) -> PhaseFigures {
        self.wait_lasted(length);
        self.finish()
    }

    /// Stops the viewers and sums up what they measured.
    pub fn finish(mut self) -> PhaseFigures {
        self.wait_window_start();
        let end = Instant::now();
        self.phases.stop();
        let stats: Vec<ViewerStats> = std::mem::take(&mut self.viewers)
            .into_iter()
            .filter_map(|viewer| viewer.join().ok())
            .collect();
        PhaseFigures::new(&stats, end.duration_since(self.window_start))
    }
}

impl Drop for PhaseRun {
    fn drop(&mut self) {
        self.phases.stop();
    }
}

/// What one phase's viewers measured.
#[derive(Debug, Clone, Default)]
pub struct PhaseFigures {
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Fresh frames per second per viewer, the median across viewers.
    pub fps_median: f64,
    /// Viewers that received at least one fresh frame in the window.
    pub receiving: usize,
    pub viewers: usize,
    /// Failed or refused streams (each followed by a reconnect), by kind.
    pub errors: Tally,
    /// Completed parts of any kind, summed over viewers (what slow viewers are judged by).
    pub parts: u64,
}

impl PhaseFigures {
    fn new(stats: &[ViewerStats], window: Duration) -> PhaseFigures {
        let seconds = window.as_secs_f64().max(1e-3);
        let latencies = Samples::merge(stats.iter().map(|s| &s.latencies[..]));
        let mut rates: Vec<f64> = stats.iter().map(|s| s.fresh as f64 / seconds).collect();
        rates.sort_by(f64::total_cmp);
        let fps_median = match rates.len() {
            0 => 0.0,
            n if n % 2 == 1 => rates[n / 2],
            n => (rates[n / 2 - 1] + rates[n / 2]) / 2.0,
        };
        let mut errors = Tally::default();
        for viewer in stats {
            errors.merge(&viewer.failures);
        }
        PhaseFigures {
            p50_ms: latencies.percentile_ms(50.0),
            p99_ms: latencies.percentile_ms(99.0),
            fps_median,
            receiving: stats.iter().filter(|s| s.fresh > 0).count(),
            viewers: stats.len(),
            errors,
            parts: stats.iter().map(|s| s.parts).sum(),
        }
    }

    /// Whether at least three quarters of the viewers got fresh frames.
    pub fn most_receiving(&self) -> bool {
        self.viewers > 0 && self.receiving * 4 >= self.viewers * 3
    }
}
