//! Attack 8, the soak: a heavier normal load for a long time, watching for slow leaks.
//!
//! 10 devices × 10 viewers at 15 fps for `SOAK_SECONDS` (default 600). Every 10 s the relay's
//! RSS, threads and descriptors go into a table; at the end the last third of the run must not
//! hold more than the first third (RSS within 2 MB of the first third's peak, threads and
//! descriptors within a small margin), which is what a leak of a frame, a thread or a socket
//! per some number of requests would break. The soak is normal load from start to end, so the
//! relay must also keep every pusher's kept-alive connection throughout: the reconnects are
//! printed and must be 0.

use std::time::{Duration, Instant};

use crate::load::{NormalLoad, Shape};
use crate::report;
use crate::resources::Usage;
use crate::scale::Scale;
use crate::trial::{self, Subject};

const SAMPLE_EVERY: Duration = Duration::from_secs(10);
const DEFAULT_SECONDS: u64 = 600;
/// Shortest soak with at least two samples per third.
const MIN_SECONDS: u64 = 60;
/// How much the last third may exceed the first third's peak.
const RSS_GROWTH_KB: u64 = 2 * 1024;
const THREADS_GROWTH: u64 = 4;
const FDS_GROWTH: u64 = 8;

pub fn soak(scale: &Scale) {
    let seconds = match std::env::var("SOAK_SECONDS") {
        Ok(text) => text
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("SOAK_SECONDS={text:?} is not a number of seconds")),
        Err(_) => DEFAULT_SECONDS,
    }
    .max(MIN_SECONDS);
    let relay = trial::start_relay(scale);
    let subject = Subject::new(relay.pid(), relay.addr);
    let load = NormalLoad::start(
        &subject.plain,
        Shape {
            devices: 10,
            viewers: 10,
            ..Shape::NORMAL
        },
    );
    let viewers = load.phase();
    viewers.wait_window_start();
    let start = Instant::now();
    let mut samples: Vec<(Duration, Usage)> = Vec::new();
    println!(
        "\nSoak, {seconds} s, 10 devices × 10 viewers, 15 fps ({}):",
        scale.relay_note()
    );
    println!("\n| t (s) | RSS MB | threads | fds |\n|---:|---:|---:|---:|");
    let mut next = start;
    while next <= start + Duration::from_secs(seconds) {
        viewers.wait_lasted(next.duration_since(start));
        let usage = Usage::read(subject.pid).expect("the relay runs through the soak");
        let at = start.elapsed();
        println!(
            "| {} | {:.1} | {} | {} |",
            at.as_secs(),
            usage.rss_mb(),
            usage.threads,
            usage.fds
        );
        samples.push((at, usage));
        next += SAMPLE_EVERY;
    }
    let figures = viewers.finish();
    let (log, ready_at) = (std::sync::Arc::clone(&load.log), load.ready_at);
    let stopped = load.stop();
    let pusher_failures = log.failures(ready_at, stopped);
    let reconnects = log.reconnects(ready_at, stopped);
    println!(
        "\nNormal viewers over the soak: {}; pusher failures: {pusher_failures}; pusher \
         reconnects: {} ({reconnects})",
        report::phase_line(&figures),
        reconnects.total()
    );

    let third = samples.len() / 3;
    let peak = |slice: &[(Duration, Usage)], figure: fn(&Usage) -> u64| {
        slice
            .iter()
            .map(|(_, usage)| figure(usage))
            .max()
            .unwrap_or(0)
    };
    let (first, last) = (&samples[..third], &samples[samples.len() - third..]);
    let mut growth = Vec::new();
    for (name, figure, allowed) in [
        (
            "RSS kB",
            (|u: &Usage| u.rss_kb) as fn(&Usage) -> u64,
            RSS_GROWTH_KB,
        ),
        ("threads", |u: &Usage| u.threads, THREADS_GROWTH),
        ("fds", |u: &Usage| u.fds, FDS_GROWTH),
    ] {
        let (early, late) = (peak(first, figure), peak(last, figure));
        if late > early + allowed {
            growth.push(format!(
                "{name}: last third's peak {late} > first third's peak {early} + {allowed}"
            ));
        }
    }
    assert!(
        figures.most_receiving(),
        "only {} of {} soak viewers received frames",
        figures.receiving,
        figures.viewers
    );
    assert!(
        reconnects.total() == 0,
        "the relay did not keep the pushers' kept-alive connections: lost {} times ({reconnects})",
        reconnects.total()
    );
    assert!(
        growth.is_empty(),
        "the relay grew over the soak: {}",
        growth.join("; ")
    );
}
