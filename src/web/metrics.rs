//! `GET /metrics`: the relay's counters in Prometheus's text exposition format (version 0.0.4).
//!
//! Written by hand, like `/api/devices`: the format is a few lines of `name{labels} value`, and
//! a client library would cost more binary than the whole endpoint. Names follow Prometheus's
//! conventions: a `streampump_` prefix, `_total` on counters, seconds and bytes as base units.
//! Device ids cannot contain characters that need escaping in a label, but label values are
//! escaped anyway so that this file stays correct on its own.
//!
//! Process-wide counts live here; the per-device ones are the device's own (`DeviceStatus`).
//! 64-bit counters sit under a lock: 32-bit MIPS has no 64-bit atomics.

use std::fmt::Write;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::https::{Counts as HandshakeCounts, HandshakeFailure};
use crate::refusal::Reason;
use crate::relay::device::DeviceStatus;
use crate::relay::memory::Snapshot;
use crate::text::decimal;

/// Process-wide counters.
pub struct Counters {
    started: Instant,
    rejected: Mutex<[u64; Reason::LABELS.len()]>,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            started: Instant::now(),
            rejected: Mutex::new([0; Reason::LABELS.len()]),
        }
    }
}

impl Counters {
    pub fn reject(&self, why: Reason) {
        let label = why.label();
        if let Some(index) = Reason::LABELS.iter().position(|&l| l == label) {
            self.rejected.lock()[index] += 1;
        }
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}

/// Figures read at the moment of the request, from parts of the server outside the registry.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    pub connections: usize,
    pub requests_in_progress: usize,
}

/// Renders every metric. Counters for rejection reasons that never happened are shown as 0,
/// so that rates and alerts work from the start.
/// `handshakes` is `None` without an HTTPS port: its families are then left out.
pub fn render(
    devices: &[DeviceStatus],
    counters: &Counters,
    gauges: Gauges,
    memory: &Snapshot,
    handshakes: Option<HandshakeCounts>,
) -> String {
    let mut out = String::with_capacity(1024 + devices.len() * 900);
    family(
        &mut out,
        "streampump_build_info",
        "gauge",
        "The running relay's version.",
    );
    let _ = writeln!(
        out,
        "streampump_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    family(
        &mut out,
        "streampump_uptime_seconds",
        "gauge",
        "Seconds since the relay started.",
    );
    let _ = writeln!(
        out,
        "streampump_uptime_seconds {}",
        seconds(counters.uptime())
    );
    family(
        &mut out,
        "streampump_connections",
        "gauge",
        "Client connections open.",
    );
    let _ = writeln!(out, "streampump_connections {}", gauges.connections);
    family(
        &mut out,
        "streampump_requests_in_progress",
        "gauge",
        "Requests being handled; each open stream is one.",
    );
    let _ = writeln!(
        out,
        "streampump_requests_in_progress {}",
        gauges.requests_in_progress
    );
    family(
        &mut out,
        "streampump_requests_rejected_total",
        "counter",
        "Requests answered with an error, by reason.",
    );
    let rejected = *counters.rejected.lock();
    for (label, count) in Reason::LABELS.iter().zip(rejected) {
        let _ = writeln!(
            out,
            "streampump_requests_rejected_total{{reason=\"{label}\"}} {count}"
        );
    }
    render_memory(&mut out, memory);
    if let Some(handshakes) = handshakes {
        render_handshakes(&mut out, handshakes);
    }
    family(
        &mut out,
        "streampump_devices",
        "gauge",
        "Devices the relay keeps now.",
    );
    let _ = writeln!(out, "streampump_devices {}", devices.len());

    type Value = fn(&DeviceStatus) -> Option<String>;
    let per_device: [(&str, &str, &str, Value); 10] = [
        (
            "streampump_device_online",
            "gauge",
            "1 while the device is online.",
            |d| Some(u8::from(d.online).to_string()),
        ),
        (
            "streampump_device_frames_received_total",
            "counter",
            "Frames pushed and published.",
            |d| Some(d.frames_received.to_string()),
        ),
        (
            "streampump_device_received_bytes_total",
            "counter",
            "Bytes of JPEG published.",
            |d| Some(d.bytes_received.to_string()),
        ),
        (
            "streampump_device_bad_frames_total",
            "counter",
            "Pushed frames refused for their content (broken, too large, cut off).",
            |d| Some(d.bad_frames.to_string()),
        ),
        (
            "streampump_device_viewers",
            "gauge",
            "Viewers watching now.",
            |d| Some(d.viewers.to_string()),
        ),
        (
            "streampump_device_frames_sent_total",
            "counter",
            "Frames written to viewers.",
            |d| Some(d.frames_sent.to_string()),
        ),
        (
            "streampump_device_frames_skipped_total",
            "counter",
            "Frames viewers skipped for a newer one (slow viewer or ?fps= cap).",
            |d| Some(d.frames_skipped.to_string()),
        ),
        (
            "streampump_device_last_frame_age_seconds",
            "gauge",
            "Seconds since the device's latest frame arrived.",
            |d| d.last_frame_age.map(seconds),
        ),
        // Only for phones whose browser tells the page (`navigator.getBattery`).
        (
            "streampump_device_battery_ratio",
            "gauge",
            "Battery level the phone last reported, from 0 to 1.",
            |d| {
                let battery = d.health.as_ref()?.0.battery?;
                Some(format!("{}.{:02}", battery / 100, battery % 100))
            },
        ),
        (
            "streampump_device_charging",
            "gauge",
            "1 while the phone last reported charging.",
            |d| Some(u8::from(d.health.as_ref()?.0.charging?).to_string()),
        ),
    ];
    for (name, kind, help, value) in per_device {
        family(&mut out, name, kind, help);
        for device in devices {
            if let Some(value) = value(device) {
                let _ = writeln!(
                    out,
                    "{name}{{device=\"{}\"}} {value}",
                    escape_label(device.id.as_str())
                );
            }
        }
    }
    out
}

/// The memory budget, what holds it, and what it refused and dropped.
fn render_memory(out: &mut String, memory: &Snapshot) {
    family(
        out,
        "streampump_memory_budget_bytes",
        "gauge",
        "Bytes that frames and uploads may hold together (--memory-budget).",
    );
    let _ = writeln!(out, "streampump_memory_budget_bytes {}", memory.limit);
    family(
        out,
        "streampump_memory_used_bytes",
        "gauge",
        "Bytes of the memory budget in use: latest frames, bodies being received, and \
         replaced frames still being written to viewers.",
    );
    let usage = memory.usage;
    for (holder, bytes) in [
        ("frames", usage.frames),
        ("uploads", usage.uploads),
        ("in_flight", usage.in_flight),
    ] {
        let _ = writeln!(
            out,
            "streampump_memory_used_bytes{{holder=\"{holder}\"}} {bytes}"
        );
    }
    family(
        out,
        "streampump_memory_refused_total",
        "counter",
        "Pushes and streamed frames refused for want of room in the memory budget.",
    );
    let _ = writeln!(out, "streampump_memory_refused_total {}", memory.refusals);
    family(
        out,
        "streampump_memory_evictions_total",
        "counter",
        "Frames dropped to make room in the memory budget.",
    );
    let _ = writeln!(
        out,
        "streampump_memory_evictions_total {}",
        memory.evictions
    );
}

/// The HTTPS port's handshakes: completed, and failed by reason (scanners, phones without
/// the authority installed, timeouts), which are counted here instead of logged.
fn render_handshakes(out: &mut String, handshakes: HandshakeCounts) {
    family(
        out,
        "streampump_tls_handshakes_total",
        "counter",
        "TLS handshakes completed on the HTTPS port.",
    );
    let _ = writeln!(
        out,
        "streampump_tls_handshakes_total {}",
        handshakes.completed
    );
    family(
        out,
        "streampump_tls_handshake_failures_total",
        "counter",
        "TLS handshakes that did not complete, by reason.",
    );
    for (reason, count) in HandshakeFailure::ALL.iter().zip(handshakes.failed) {
        let _ = writeln!(
            out,
            "streampump_tls_handshake_failures_total{{reason=\"{}\"}} {count}",
            reason.label()
        );
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Seconds with millisecond precision, printed without floating point (see `decimal`).
fn seconds(duration: Duration) -> String {
    let millis = decimal::whole_millis(duration);
    format!("{}.{:03}", millis / 1000, millis % 1000)
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_labels_are_written_exactly() {
        assert_eq!(seconds(Duration::from_millis(12_345)), "12.345");
        assert_eq!(seconds(Duration::from_millis(7)), "0.007");
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn counts_rejections_and_lists_every_reason() {
        let counters = Counters::default();
        counters.reject(Reason::ViewerLimit);
        counters.reject(Reason::ViewerLimit);
        let memory = Snapshot {
            limit: 1000,
            usage: crate::relay::memory::Usage {
                frames: 300,
                uploads: 200,
                newcomer_uploads: 0,
                in_flight: 100,
            },
            refusals: 4,
            evictions: 5,
        };
        let text = render(&[], &counters, Gauges::default(), &memory, None);
        assert!(text.contains("streampump_memory_budget_bytes 1000\n"));
        assert!(text.contains("streampump_memory_used_bytes{holder=\"in_flight\"} 100\n"));
        assert!(text.contains("streampump_memory_refused_total 4\n"));
        assert!(text.contains("streampump_memory_evictions_total 5\n"));
        assert!(!text.contains("streampump_tls_"));
        let with_tls = render(
            &[],
            &counters,
            Gauges::default(),
            &memory,
            Some(HandshakeCounts {
                completed: 3,
                failed: [1, 0, 0, 2, 0, 0],
            }),
        );
        assert!(with_tls.contains("streampump_tls_handshakes_total 3\n"));
        assert!(
            with_tls.contains("streampump_tls_handshake_failures_total{reason=\"unknown_ca\"} 2\n")
        );
        assert!(text.contains("streampump_requests_rejected_total{reason=\"viewer_limit\"} 2\n"));
        assert!(text.contains("streampump_requests_rejected_total{reason=\"bad_request\"} 0\n"));
        assert!(text.contains("# TYPE streampump_device_frames_sent_total counter\n"));
        assert!(text.contains("streampump_devices 0\n"));
    }
}
