//! The phases of one load run, in order: check the server is there, start the pushers, wait
//! until every device has a frame, start the viewers, warm up, measure, stop, collect.
//!
//! Viewers start only once every device has had a push accepted, because the reference server
//! answers 404 to viewers of a device it has no frame for yet. The measurement window is fixed
//! before the viewers start, so every thread can decide by itself whether an event counts.
//! Stopping is bounded too: every thread polls the stop signal between blocking calls that all
//! have timeouts, and threads that still have not finished by a deadline are left behind and
//! reported rather than waited for.

use std::io;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::args::Config;
use crate::clock::{Clock, Phases, Window};
use crate::error::LoadError;
use crate::http::{self, CONNECT_TIMEOUT, IO_TIMEOUT};
use crate::proc_stats::{self, ProcSample};
use crate::pusher::Pusher;
use crate::readiness::Readiness;
use crate::report::{Report, ServerFigures};
use crate::viewer::{Behaviour, Viewer, ViewerStats};

/// How long every device gets to have its first push accepted.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long threads get to finish after the stop signal: one blocked connect or read or
/// write, plus a margin.
const STOP_GRACE: Duration =
    Duration::from_secs(CONNECT_TIMEOUT.as_secs() + IO_TIMEOUT.as_secs() + 2);

pub fn run(config: &Config) -> Result<Report, LoadError> {
    check_reachable(config)?;
    if let Some(pid) = config.pid {
        proc_stats::read(pid).map_err(|error| LoadError::NoProcess { pid, error })?;
    }
    let phases = Arc::new(Phases::new(Clock::start()));
    let result = measure(config, &phases);
    // Whatever happened, every thread is told to stop before this returns.
    phases.stop();
    result
}

/// Fails fast, with the URL in the message, when nothing listens there.
fn check_reachable(config: &Config) -> Result<(), LoadError> {
    http::connect(&config.target)
        .map(drop)
        .map_err(|error| LoadError::Unreachable {
            url: config.target.to_string(),
            error,
        })
}

fn measure(config: &Config, phases: &Arc<Phases>) -> Result<Report, LoadError> {
    let sampler = match config.pid {
        Some(pid) => Some(
            proc_stats::spawn_sampler(pid, Arc::clone(phases))
                .map_err(|error| thread_error("lg-proc-sampler", error))?,
        ),
        None => None,
    };
    progress(&format!(
        "{}: {} device(s) pushing {}-byte frames at {} fps",
        config.label, config.devices, config.frame_bytes, config.fps
    ));
    let readiness = Arc::new(Readiness::new(config.devices));
    let mut pushers = Vec::new();
    for index in 0..config.devices {
        let pusher = Pusher {
            index,
            device_id: config.device_id(index),
            target: config.target.clone(),
            frame_bytes: config.frame_bytes,
            interval: config.push_interval(),
            phase: config.push_interval() * index / config.devices.max(1),
            phases: Arc::clone(phases),
            readiness: Arc::clone(&readiness),
            observer: None,
        };
        match pusher.spawn() {
            Ok(handle) => pushers.push(handle),
            Err(error) => {
                return Err(abandon(
                    phases,
                    thread_error(&format!("lg-push-{index}"), error),
                ))
            }
        }
    }
    if let Err(waiting) = readiness.wait_all(READY_TIMEOUT) {
        let waiting = waiting
            .into_iter()
            .map(|(index, reason)| {
                let url = config
                    .target
                    .url(&format!("/pump_push/{}", config.device_id(index)));
                reason.unwrap_or_else(|| format!("{url}: no answer yet"))
            })
            .collect();
        return Err(abandon(
            phases,
            LoadError::NoFirstPush {
                timeout: READY_TIMEOUT,
                waiting,
            },
        ));
    }

    let start = Instant::now() + config.warmup;
    let window = Window {
        start,
        end: start + config.duration,
    };
    phases.set_window(window);
    let viewers = spawn_viewers(config, phases).map_err(|error| abandon(phases, error))?;
    progress(&format!(
        "{}: {} viewer connection(s) started; warm-up {:.1} s, then measuring {:.1} s",
        config.label,
        viewers.len(),
        config.warmup.as_secs_f64(),
        config.duration.as_secs_f64()
    ));

    let own_pid = std::process::id();
    phases.sleep_until(window.start);
    let cpu_at_start = config.pid.and_then(|pid| proc_stats::read(pid).ok());
    let own_cpu_at_start = proc_stats::read(own_pid).ok();
    phases.sleep_until(window.end);
    let cpu_at_end = config.pid.and_then(|pid| proc_stats::read(pid).ok());
    let own_cpu_at_end = proc_stats::read(own_pid).ok();
    phases.stop();

    let deadline = Instant::now() + STOP_GRACE;
    let (pusher_stats, unfinished_pushers) = join_by(pushers, deadline);
    let (viewer_stats, unfinished_viewers) = join_by(viewers, deadline);
    let server = match (config.pid, sampler) {
        (Some(pid), Some(sampler)) => {
            let (peaks, _) = join_by(vec![sampler], deadline);
            Some(ServerFigures {
                pid,
                cpu_seconds: cpu_seconds(cpu_at_start, cpu_at_end),
                peaks: peaks.into_iter().next().unwrap_or_default(),
            })
        }
        _ => None,
    };
    let report = Report::new(
        config,
        &pusher_stats,
        &viewer_stats,
        server,
        cpu_seconds(own_cpu_at_start, own_cpu_at_end),
        unfinished_pushers + unfinished_viewers,
    );
    Ok(report)
}

/// Starts every viewer: per device the normal ones, then the slow, then the stalled.
fn spawn_viewers(
    config: &Config,
    phases: &Arc<Phases>,
) -> Result<Vec<JoinHandle<ViewerStats>>, LoadError> {
    let mut handles = Vec::new();
    for device in 0..config.devices {
        for (behaviour, count) in [
            (Behaviour::Normal, config.viewers),
            (Behaviour::Slow, config.slow),
            (Behaviour::Stalled, config.stalled),
        ] {
            for index in 0..count {
                let viewer = Viewer {
                    behaviour,
                    device,
                    device_id: config.device_id(device),
                    index,
                    target: config.target.clone(),
                    frame_bytes: config.frame_bytes,
                    phases: Arc::clone(phases),
                };
                let name = viewer.thread_name();
                handles.push(viewer.spawn().map_err(|error| thread_error(&name, error))?);
            }
        }
    }
    Ok(handles)
}

fn cpu_seconds(start: Option<ProcSample>, end: Option<ProcSample>) -> Option<f64> {
    let ticks = end?.cpu_ticks.checked_sub(start?.cpu_ticks)?;
    Some(ticks as f64 / proc_stats::ticks_per_second() as f64)
}

/// Collects the results of threads that finish by `deadline`; returns how many did not (or
/// panicked). Threads left behind end with the process.
fn join_by<T>(handles: Vec<JoinHandle<T>>, deadline: Instant) -> (Vec<T>, usize) {
    let mut results = Vec::with_capacity(handles.len());
    let mut unfinished = 0;
    for handle in handles {
        while !handle.is_finished() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        if !handle.is_finished() {
            unfinished += 1;
            continue;
        }
        match handle.join() {
            Ok(result) => results.push(result),
            Err(_) => unfinished += 1,
        }
    }
    (results, unfinished)
}

/// Stops the threads already started before giving up with `error`. They finish on their own
/// within [`STOP_GRACE`]; the process exits right after the error is printed.
fn abandon(phases: &Phases, error: LoadError) -> LoadError {
    phases.stop();
    error
}

fn thread_error(name: &str, error: io::Error) -> LoadError {
    LoadError::Thread {
        name: name.to_string(),
        error,
    }
}

fn progress(message: &str) {
    eprintln!("loadgen: {message}");
}
