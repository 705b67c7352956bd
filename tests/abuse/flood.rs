//! Attack 15: a flood of maximal frames to new device ids, against two phones that are watched.
//!
//! What a misbehaving device on the home network did to the relay before it had a memory
//! budget: 70 pushes of 4 MiB to 70 new ids took its RSS to 258 MB, and kept it there for
//! `--evict-after`. Here the relay runs with an explicit `--memory-budget` (the scale's), two
//! phones push 60 KB frames at 15 fps with two viewers each (the trial's normal load), and
//! one client pushes frames of the largest size to new ids, over a few connections at once,
//! as fast as they go, for the scale's time. Required:
//! - the relay's RSS, sampled every 100 ms, never rises above the baseline (taken with the
//!   phones running) plus the budget plus [`RSS_MARGIN_KB`] (under qemu-user, the relay's own
//!   mappings: see `resources::Usage::read`);
//! - no push of the phones fails during the flood (a 503 would be one), and their viewers keep
//!   receiving (at full scale at least 14 fps, as for every attack);
//! - the flood really met the budget: frames were dropped to make room
//!   (`streampump_memory_evictions_total` > 0);
//! - once the flood stops, its devices are forgotten (`--evict-after` is short here) while both
//!   phones are still there and online, having lost nothing to the flood (no bad frame, every
//!   push answered 200).

use std::io::{BufReader, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::frames::Frame;
use crate::http::{self, Target};
use crate::load::Shape;
use crate::probe;
use crate::resources::PeakSampler;
use crate::scale::Scale;
use crate::trial::{self, Outcome, Row, Subject};
use crate::THREAD_STACK_BYTES;

/// Frames of the largest size the relay takes with its default `--max-frame-bytes`: 4 MiB,
/// or a quarter of the budget when that is less (2 MiB with a 64 MB router's 8 MiB).
fn maximal_frame(budget: usize) -> usize {
    (4 << 20).min(budget / 4)
}
/// The phones: two devices, two viewers each, 60 KB frames.
const PHONES: Shape = Shape {
    devices: 2,
    viewers: 2,
    frame_bytes: 60_000,
};
/// What the relay may hold beyond its baseline and its budget: the flood's connections
/// (a thread, its stack and an 8 KiB head buffer each), the streams' buffers, and what the
/// allocator keeps of freed blocks between its trims (glibc keeps blocks under its 1 MiB mmap
/// threshold in the heap; the phones' 60 KB frames are such blocks).
pub const RSS_MARGIN_KB: u64 = 8 * 1024;
/// After the flood, its devices must be forgotten within this long (`--evict-after` 3 s,
/// checked every second).
const FORGOTTEN_WITHIN: Duration = Duration::from_secs(15);

/// What the flood's pushes were answered.
#[derive(Debug, Default)]
struct FloodTally {
    accepted: AtomicU64,
    refused: AtomicU64,
    other: AtomicU64,
}

pub fn flood_of_new_devices(scale: &Scale) -> Row {
    let mut args = scale.relay_args();
    for (flag, value) in [
        ("--memory-budget", scale.flood_budget.to_string()),
        ("--offline-after", "2s".to_string()),
        ("--evict-after", "3s".to_string()),
    ] {
        args.extend([flag.to_string(), value]);
    }
    let relay = trial::start_relay_with(args);
    let subject = Subject::new(relay.pid(), relay.addr);
    let budget_kb = scale.flood_budget as u64 / 1024;
    let what = format!(
        "--memory-budget {} MiB; 2 phones push 60 KB at 15 fps, 2 viewers each; one client \
         pushes {} MiB frames to {} new ids over {} connections for {} s; RSS must stay \
         within baseline + budget + {} MiB",
        scale.flood_budget >> 20,
        maximal_frame(scale.flood_budget) >> 20,
        scale.flood_ids,
        scale.flood_connections,
        scale.flood_for.as_secs(),
        RSS_MARGIN_KB / 1024
    );
    let row = trial::run(
        15,
        "flood of new devices",
        what,
        &subject,
        PHONES,
        scale,
        |context| {
            let target = context.target();
            let sampler = PeakSampler::start(context.subject.pid);
            let started = Instant::now();
            let tally = flood(target, scale);
            let peak = sampler.finish();
            let phone_failures = context.load.log.failures(started, Instant::now());
            let mut failures = Vec::new();
            let bound_kb = context.baseline.rss_kb + budget_kb + RSS_MARGIN_KB;
            if peak.rss_kb > bound_kb {
                failures.push(format!(
                    "RSS rose to {:.1} MB during the flood, over baseline {:.1} MB + budget \
                     {} MB + margin {} MB",
                    peak.rss_mb(),
                    context.baseline.rss_mb(),
                    budget_kb / 1024,
                    RSS_MARGIN_KB / 1024
                ));
            }
            if phone_failures.total() > 0 {
                failures.push(format!(
                    "the phones' pushes failed {} times during the flood ({phone_failures})",
                    phone_failures.total()
                ));
            }
            let evictions = metric(target, "streampump_memory_evictions_total");
            // Judged while the phones still push: the trial stops them when this returns.
            failures.extend(after_the_flood(target));
            if evictions.is_none_or(|count| count == 0) {
                failures.push(format!(
                    "the flood never made the relay drop a frame (evictions: {evictions:?}): \
                     it did not meet the budget"
                ));
            }
            Outcome {
                notes: format!(
                    "flood pushes: {} accepted, {} refused (503), {} failed otherwise; frames \
                     dropped to make room: {}; peak RSS {:.1} MB (baseline {:.1} MB, bound \
                     {:.1} MB)",
                    tally.accepted.load(Ordering::Relaxed),
                    tally.refused.load(Ordering::Relaxed),
                    tally.other.load(Ordering::Relaxed),
                    evictions.unwrap_or_default(),
                    peak.rss_mb(),
                    context.baseline.rss_mb(),
                    bound_kb as f64 / 1024.0
                ),
                failures,
                ..Outcome::default()
            }
        },
    );
    drop(relay);
    row
}

/// Pushes maximal frames to new ids from `flood_connections` threads until the flood's time
/// is up.
fn flood(target: &Target, scale: &Scale) -> FloodTally {
    let tally = Arc::new(FloodTally::default());
    let next_id = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let frame = Arc::new(Frame::new(maximal_frame(scale.flood_budget), 99));
    let pushers: Vec<_> = (0..scale.flood_connections)
        .map(|index| {
            let (tally, next_id, stop, frame) = (
                Arc::clone(&tally),
                Arc::clone(&next_id),
                Arc::clone(&stop),
                Arc::clone(&frame),
            );
            let target = target.clone();
            let ids = scale.flood_ids as u64;
            thread::Builder::new()
                .name(format!("abuse-flood-{index}"))
                .stack_size(THREAD_STACK_BYTES)
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let id = next_id.fetch_add(1, Ordering::Relaxed) % ids;
                        let counter = match push(&target, &format!("flood_{id}"), frame.bytes()) {
                            Some(200) => &tally.accepted,
                            Some(503) => &tally.refused,
                            _ => &tally.other,
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                })
                .expect("start a flood thread")
        })
        .collect();
    thread::sleep(scale.flood_for);
    stop.store(true, Ordering::Relaxed);
    for pusher in pushers {
        let _ = pusher.join();
    }
    Arc::try_unwrap(tally).unwrap_or_default()
}

/// One push on a connection of its own; the status, if one came. A refusal may come before
/// the body is read, and the relay then closes: the rest of the body may not go out.
fn push(target: &Target, device: &str, frame: &[u8]) -> Option<u16> {
    let mut stream = http::connect(target).ok()?;
    let head = format!(
        "POST /pump_push/{device} HTTP/1.1\r\nHost: {}\r\nContent-Type: image/jpeg\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        target.authority,
        frame.len()
    );
    stream.write_all(head.as_bytes()).ok()?;
    let _ = stream.write_all(frame);
    let mut reader = BufReader::new(stream);
    http::read_response_head(&mut reader)
        .ok()
        .map(|head| head.status)
}

/// A counter or gauge without labels from `/metrics`.
fn metric(target: &Target, name: &str) -> Option<u64> {
    let (_, body) = probe::get(target, "/metrics").ok()?;
    let text = String::from_utf8_lossy(&body).into_owned();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

/// The flood's devices are forgotten, and the phones are there with every frame good.
fn after_the_flood(target: &Target) -> Vec<String> {
    let deadline = Instant::now() + FORGOTTEN_WITHIN;
    let mut devices;
    loop {
        devices = probe::devices(target).unwrap_or_default();
        let flood_left = devices
            .iter()
            .filter(|d| d["id"].as_str().is_some_and(|id| id.starts_with("flood_")))
            .count();
        if flood_left == 0 {
            break;
        }
        if Instant::now() >= deadline {
            return vec![format!(
                "{flood_left} flood devices still kept {} s after the flood",
                FORGOTTEN_WITHIN.as_secs()
            )];
        }
        thread::sleep(Duration::from_millis(200));
    }
    let mut failures = Vec::new();
    for phone in ["cam_0", "cam_1"] {
        match devices.iter().find(|d| d["id"] == phone) {
            None => failures.push(format!("phone {phone} was lost")),
            Some(status) if status["bad_frames"] != 0 || status["online"] != true => {
                failures.push(format!(
                    "phone {phone} after the flood: online {}, bad frames {}",
                    status["online"], status["bad_frames"]
                ))
            }
            Some(_) => {}
        }
    }
    failures
}
