//! Turning the threads' raw figures into the report, as a table for people and as one flat
//! JSON object for scripts (`bench/run.sh` reads it with nothing more than `sed`, so it stays
//! flat: numbers, strings, booleans and `null`, never nested).
//!
//! Rates are per second of the measurement window. "Fresh" frames are counted per normal
//! viewer; slow and stalled viewers are reported apart, because the question they answer is
//! whether the normal viewers of the same device suffer from them.

use std::fmt::Write;

use crate::args::Config;
use crate::proc_stats::Peaks;
use crate::pusher::PusherStats;
use crate::stats::{Samples, Tally};
use crate::viewer::{Behaviour, ViewerStats};

/// What was measured on the server process (`--pid`).
#[derive(Debug, Clone)]
pub struct ServerFigures {
    pub pid: u32,
    /// CPU seconds used during the window; `None` if the process could not be read at both
    /// ends of it.
    pub cpu_seconds: Option<f64>,
    pub peaks: Peaks,
}

#[derive(Debug)]
pub struct Report {
    label: String,
    url: String,
    devices: u32,
    viewers: u32,
    slow: u32,
    stalled: u32,
    fps: f64,
    frame_bytes: usize,
    seconds: f64,
    warmup_seconds: f64,
    pushes_accepted: u64,
    push_round_trip: Samples,
    push_failures: Tally,
    push_reconnects: Tally,
    latency: Samples,
    fresh_total: u64,
    fresh_per_viewer: Vec<f64>,
    repeats_per_viewer: Vec<f64>,
    unstamped: u64,
    viewer_failures: Tally,
    /// Streams answered 200, and the reading viewers that opened them: more streams than
    /// viewers means reconnects.
    streams_opened: u64,
    reading_viewers: usize,
    slow_parts_per_viewer: Vec<f64>,
    stalled_held: usize,
    server: Option<ServerFigures>,
    /// CPU seconds loadgen itself used in the window: on a shared machine, what the server
    /// competed with.
    client_cpu_seconds: Option<f64>,
    /// Threads that had not stopped when the report was made; their figures are missing.
    unfinished_threads: usize,
}

impl Report {
    pub fn new(
        config: &Config,
        pushers: &[PusherStats],
        viewers: &[ViewerStats],
        server: Option<ServerFigures>,
        client_cpu_seconds: Option<f64>,
        unfinished_threads: usize,
    ) -> Report {
        let seconds = config.duration.as_secs_f64();
        let of = |behaviour: Behaviour| viewers.iter().filter(move |v| v.behaviour == behaviour);
        let mut push_failures = Tally::default();
        pushers
            .iter()
            .for_each(|p| push_failures.merge(&p.failures));
        let mut push_reconnects = Tally::default();
        pushers
            .iter()
            .for_each(|p| push_reconnects.merge(&p.reconnects));
        let mut viewer_failures = Tally::default();
        for viewer in viewers {
            let failures = match viewer.behaviour {
                Behaviour::Normal => viewer.failures.clone(),
                Behaviour::Slow => viewer.failures.prefixed("slow "),
                Behaviour::Stalled => viewer.failures.prefixed("stalled "),
            };
            viewer_failures.merge(&failures);
        }
        Report {
            label: config.label.clone(),
            url: config.target.to_string(),
            devices: config.devices,
            viewers: config.viewers,
            slow: config.slow,
            stalled: config.stalled,
            fps: config.fps,
            frame_bytes: config.frame_bytes,
            seconds,
            warmup_seconds: config.warmup.as_secs_f64(),
            pushes_accepted: pushers.iter().map(|p| p.accepted).sum(),
            push_round_trip: Samples::merge(pushers.iter().map(|p| &p.round_trips[..])),
            push_failures,
            push_reconnects,
            latency: Samples::merge(of(Behaviour::Normal).map(|v| &v.latencies[..])),
            fresh_total: of(Behaviour::Normal).map(|v| v.fresh).sum(),
            fresh_per_viewer: of(Behaviour::Normal)
                .map(|v| v.fresh as f64 / seconds)
                .collect(),
            repeats_per_viewer: of(Behaviour::Normal)
                .map(|v| v.repeats as f64 / seconds)
                .collect(),
            unstamped: of(Behaviour::Normal).map(|v| v.unstamped).sum(),
            viewer_failures,
            streams_opened: viewers
                .iter()
                .filter(|v| v.behaviour != Behaviour::Stalled)
                .map(|v| v.streams_opened)
                .sum(),
            reading_viewers: viewers
                .iter()
                .filter(|v| v.behaviour != Behaviour::Stalled)
                .count(),
            slow_parts_per_viewer: of(Behaviour::Slow)
                .map(|v| v.parts as f64 / seconds)
                .collect(),
            stalled_held: of(Behaviour::Stalled).count(),
            server,
            client_cpu_seconds,
            unfinished_threads,
        }
    }

    fn push_rate_per_device(&self) -> f64 {
        self.pushes_accepted as f64 / f64::from(self.devices) / self.seconds
    }

    fn cpu_ms_per_1000_fresh(&self) -> Option<f64> {
        let cpu = self.server.as_ref()?.cpu_seconds?;
        (self.fresh_total > 0).then(|| cpu * 1000.0 / (self.fresh_total as f64 / 1000.0))
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let ms = |value: Option<f64>| value.map_or("n/a".to_string(), |v| format!("{v:.3} ms"));
        let rate = |value: Option<f64>| value.map_or("n/a".to_string(), |v| format!("{v:.2}/s"));
        let mut rows: Vec<(&str, String)> = vec![
            ("server", self.url.clone()),
            (
                "load",
                format!(
                    "{} device(s) × {} viewer(s) (+{} slow, +{} stalled), {} fps, {}-byte frames",
                    self.devices, self.viewers, self.slow, self.stalled, self.fps, self.frame_bytes
                ),
            ),
            (
                "measured",
                format!(
                    "{:.1} s after {:.1} s of warm-up",
                    self.seconds, self.warmup_seconds
                ),
            ),
            (
                "pushes",
                format!(
                    "{} accepted ({:.2}/s per device); failures over the whole run: {}; \
                     kept-alive connections lost: {}",
                    self.pushes_accepted,
                    self.push_rate_per_device(),
                    self.push_failures,
                    self.push_reconnects
                ),
            ),
            (
                "push round trip",
                format!(
                    "p50 {}   p99 {}",
                    ms(self.push_round_trip.percentile_ms(50.0)),
                    ms(self.push_round_trip.percentile_ms(99.0))
                ),
            ),
            (
                "relay latency",
                format!(
                    "p50 {}   p99 {}   max {}   ({} fresh frames)",
                    ms(self.latency.percentile_ms(50.0)),
                    ms(self.latency.percentile_ms(99.0)),
                    ms(self.latency.max_ms()),
                    self.latency.len()
                ),
            ),
            (
                "fresh per viewer",
                format!(
                    "mean {}   min {}   ({} in total)",
                    rate(mean(&self.fresh_per_viewer)),
                    rate(min(&self.fresh_per_viewer)),
                    self.fresh_total
                ),
            ),
            (
                "repeats per viewer",
                format!("mean {}", rate(mean(&self.repeats_per_viewer))),
            ),
            ("unstamped parts", self.unstamped.to_string()),
            (
                "viewer failures",
                format!("{} (whole run)", self.viewer_failures),
            ),
            (
                "streams opened",
                format!(
                    "{} by {} reading viewers (more means reconnects)",
                    self.streams_opened, self.reading_viewers
                ),
            ),
        ];
        if self.slow > 0 {
            let parts = rate(mean(&self.slow_parts_per_viewer));
            rows.push(("slow viewers", format!("{parts} parts each (mean)")));
        }
        if self.stalled > 0 {
            rows.push((
                "stalled viewers",
                format!("{} held to the end", self.stalled_held),
            ));
        }
        if let Some(server) = &self.server {
            let cpu = match (server.cpu_seconds, self.cpu_ms_per_1000_fresh()) {
                (Some(cpu), Some(per)) => {
                    format!("{cpu:.2} s in the window, {per:.1} ms per 1000 fresh frames")
                }
                (Some(cpu), None) => format!("{cpu:.2} s in the window"),
                (None, _) => "n/a".to_string(),
            };
            rows.push(("server pid", server.pid.to_string()));
            rows.push(("server CPU", cpu));
            rows.push((
                "server memory",
                format!(
                    "peak RSS {:.1} MB (kernel high-water mark {:.1} MB)",
                    server.peaks.rss_kb as f64 / 1024.0,
                    server.peaks.hwm_kb as f64 / 1024.0
                ),
            ));
            rows.push(("server threads", format!("peak {}", server.peaks.threads)));
            if let Some(lost) = &server.peaks.lost {
                rows.push(("server WARNING", lost.clone()));
            }
        }
        if let Some(cpu) = self.client_cpu_seconds {
            rows.push(("loadgen CPU", format!("{cpu:.2} s in the window")));
        }
        if self.unfinished_threads > 0 {
            rows.push((
                "WARNING",
                format!(
                    "{} thread(s) did not stop in time; their figures are missing",
                    self.unfinished_threads
                ),
            ));
        }
        let mut table = format!("loadgen: {}\n", self.label);
        for (name, value) in rows {
            let _ = writeln!(table, "  {name:<20} {value}");
        }
        table
    }

    /// One flat JSON object, newline-terminated.
    pub fn json(&self) -> String {
        let mut json = Json::default();
        json.string("label", &self.label);
        json.string("url", &self.url);
        json.integer("devices", u64::from(self.devices));
        json.integer("viewers_per_device", u64::from(self.viewers));
        json.integer("slow_per_device", u64::from(self.slow));
        json.integer("stalled_per_device", u64::from(self.stalled));
        json.number("fps", Some(self.fps));
        json.integer("frame_bytes", self.frame_bytes as u64);
        json.number("duration_s", Some(self.seconds));
        json.number("warmup_s", Some(self.warmup_seconds));
        json.integer("pushes_accepted", self.pushes_accepted);
        json.number("push_rate_per_device", Some(self.push_rate_per_device()));
        json.number("push_rtt_p50_ms", self.push_round_trip.percentile_ms(50.0));
        json.number("push_rtt_p99_ms", self.push_round_trip.percentile_ms(99.0));
        json.integer("push_errors", self.push_failures.total());
        json.string("push_errors_by_kind", &self.push_failures.to_string());
        json.integer("push_reconnects", self.push_reconnects.total());
        json.number("latency_p50_ms", self.latency.percentile_ms(50.0));
        json.number("latency_p99_ms", self.latency.percentile_ms(99.0));
        json.number("latency_max_ms", self.latency.max_ms());
        json.integer("fresh_total", self.fresh_total);
        json.number("fresh_fps_mean", mean(&self.fresh_per_viewer));
        json.number("fresh_fps_min", min(&self.fresh_per_viewer));
        json.number("repeat_fps_mean", mean(&self.repeats_per_viewer));
        json.integer("unstamped_parts", self.unstamped);
        json.integer("viewer_errors", self.viewer_failures.total());
        json.string("viewer_errors_by_kind", &self.viewer_failures.to_string());
        json.integer("streams_opened", self.streams_opened);
        json.integer("reading_viewers", self.reading_viewers as u64);
        json.number("slow_parts_per_s_mean", mean(&self.slow_parts_per_viewer));
        json.integer("stalled_held", self.stalled_held as u64);
        let server = self.server.as_ref();
        json.number("cpu_s", server.and_then(|s| s.cpu_seconds));
        json.number("cpu_ms_per_1000_fresh", self.cpu_ms_per_1000_fresh());
        let peak = |value: fn(&Peaks) -> u64| server.map(|s| value(&s.peaks) as f64);
        json.number("rss_peak_kb", peak(|p| p.rss_kb));
        json.number("rss_hwm_kb", peak(|p| p.hwm_kb));
        json.number("threads_peak", peak(|p| p.threads));
        json.number("loadgen_cpu_s", self.client_cpu_seconds);
        json.boolean(
            "server_lost",
            server.is_some_and(|s| s.peaks.lost.is_some()),
        );
        json.integer("unfinished_threads", self.unfinished_threads as u64);
        json.finish()
    }
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

fn min(values: &[f64]) -> Option<f64> {
    values.iter().copied().reduce(f64::min)
}

/// Builds a flat JSON object field by field.
#[derive(Default)]
struct Json {
    text: String,
}

impl Json {
    fn key(&mut self, key: &str) {
        self.text.push(if self.text.is_empty() { '{' } else { ',' });
        push_string(&mut self.text, key);
        self.text.push(':');
    }

    fn string(&mut self, key: &str, value: &str) {
        self.key(key);
        push_string(&mut self.text, value);
    }

    fn integer(&mut self, key: &str, value: u64) {
        self.key(key);
        let _ = write!(self.text, "{value}");
    }

    /// Three decimals, or `null` for a missing or non-finite value.
    fn number(&mut self, key: &str, value: Option<f64>) {
        self.key(key);
        match value.filter(|v| v.is_finite()) {
            Some(value) => {
                let _ = write!(self.text, "{value:.3}");
            }
            None => self.text.push_str("null"),
        }
    }

    fn boolean(&mut self, key: &str, value: bool) {
        self.key(key);
        self.text.push_str(if value { "true" } else { "false" });
    }

    fn finish(mut self) -> String {
        if self.text.is_empty() {
            self.text.push('{');
        }
        self.text.push_str("}\n");
        self.text
    }
}

fn push_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_flat_and_escaped() {
        let mut json = Json::default();
        json.string("label", "a \"b\"\n");
        json.integer("n", 3);
        json.number("x", Some(1.23456));
        json.number("missing", None);
        json.number("nan", Some(f64::NAN));
        json.boolean("ok", true);
        assert_eq!(
            json.finish(),
            "{\"label\":\"a \\\"b\\\"\\u000a\",\"n\":3,\"x\":1.235,\"missing\":null,\
             \"nan\":null,\"ok\":true}\n"
        );
        assert_eq!(Json::default().finish(), "{}\n");
    }

    #[test]
    fn means_and_minimums_of_nothing_are_missing() {
        assert_eq!(mean(&[]), None);
        assert_eq!(min(&[]), None);
        assert_eq!(mean(&[1.0, 2.0, 6.0]), Some(3.0));
        assert_eq!(min(&[3.0, 1.5, 2.0]), Some(1.5));
    }
}
