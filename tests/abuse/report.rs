//! The report: one markdown row per attack, printed as each attack finishes and, at full
//! scale, gathered into `target/abuse-report.md` in attack order.
//!
//! Tests may finish in any order (and run side by side at quick scale), so rows are kept in
//! one process-wide list and the whole file is rewritten after each; the run that finishes
//! last leaves the complete report. Every figure comes from a [`Row`] the trial measured.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::load::{PhaseFigures, Shape, FPS, FRAME_BYTES};
use crate::resources::{Allowance, Usage};
use crate::scale::Scale;
use crate::trial::{Row, MAX_P99_MS_DURING, MIN_FPS_DURING};

/// Rows finished so far in this process, with their markdown.
static ROWS: Mutex<Vec<(u8, Rendered)>> = Mutex::new(Vec::new());

#[derive(Clone)]
struct Rendered {
    row: String,
    below: String,
}

const HEADER: &str = "| # | attack | latency p50/p99 ms (before · during · after) | \
fps per viewer (before · during · after) | viewer errors (b · d · a) | \
pusher reconnects (b · d · a) | recovered | threads (base → peak → after) | fds | RSS MB | \
what happened |\n\
|---|---|---|---|---|---|---|---|---|---|---|\n";

/// Prints the row, adds it to the report file at full scale, and fails the test if the
/// relay misbehaved.
pub fn finish(row: Row) {
    let scale = Scale::from_env();
    let rendered = render(&row);
    println!(
        "\n{}\n{HEADER}{}\n{}",
        preamble(&scale),
        rendered.row,
        rendered.below
    );
    if scale.full {
        let mut rows = ROWS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        rows.push((row.number, rendered));
        rows.sort_by_key(|(number, _)| *number);
        write_file(&scale, &rows);
    }
    assert!(
        row.failures.is_empty(),
        "attack {} ({}) — the relay misbehaved:\n  {}",
        row.number,
        row.title,
        row.failures.join("\n  ")
    );
}

fn preamble(scale: &Scale) -> String {
    let Shape {
        devices, viewers, ..
    } = Shape::NORMAL;
    let allowance = Allowance::AFTER_ATTACK;
    let pace = if scale.full {
        format!(
            "During every attack the normal viewers must get at least {MIN_FPS_DURING} fps \
             (median) with a latency p99 under {MAX_P99_MS_DURING} ms (unless an attack allowed \
             to take the pushers' connections took them)."
        )
    } else {
        "Latency and frame rates are recorded, not judged, at this scale.".to_string()
    };
    format!(
        "Abuse suite, {} scale. Relay: {}. Normal load: {devices} devices × {viewers} viewers, \
         {FPS} fps, {FRAME_BYTES}-byte frames (attack 7: 1 × 2; attack 15: 2 × 2 with 60 KB frames). Pusher reconnects = the normal \
         pushers' kept-alive connections lost (must be 0 before the attack). Recovered = \
         serving a fresh viewer and back to the baseline's threads and descriptors exactly, \
         RSS within +{} MB of it. {pace}",
        scale.name(),
        scale.relay_note(),
        allowance.rss_kb / 1024
    )
}

fn write_file(scale: &Scale, rows: &[(u8, Rendered)]) {
    let mut text = format!(
        "# streampump abuse report\n\n{}\n\n{HEADER}",
        preamble(scale)
    );
    for (_, rendered) in rows {
        text += &rendered.row;
        text.push('\n');
    }
    for (_, rendered) in rows {
        text += &rendered.below;
    }
    let path = report_path();
    if let Some(parent) = path.parent() {
        let _ = fs::create_dir_all(parent);
    }
    if let Err(error) = fs::write(&path, text) {
        eprintln!("cannot write {}: {error}", path.display());
    }
}

fn report_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/abuse-report.md")
}

fn render(row: &Row) -> Rendered {
    let phases = [&row.before, &row.during, &row.after];
    let latency = phases.map(|p| format!("{}/{}", ms(p.p50_ms), ms(p.p99_ms)));
    let fps = phases.map(|p| {
        if p.receiving == p.viewers {
            format!("{:.1}", p.fps_median)
        } else {
            format!(
                "{:.1} ({}/{} got frames)",
                p.fps_median, p.receiving, p.viewers
            )
        }
    });
    let errors = phases.map(|p| p.errors.total().to_string());
    let recovered = match row.recovered {
        Some(after) => format!("yes, {:.1} s", after.as_secs_f64()),
        None => "**no**".to_string(),
    };
    let reconnects = row
        .pusher_reconnects
        .each_ref()
        .map(|t| t.total().to_string());
    let usage = |figure: fn(&Usage) -> String| {
        format!(
            "{} → {} → {}",
            figure(&row.baseline),
            figure(&row.peak),
            row.after_usage
                .as_ref()
                .map_or("exited".to_string(), figure)
        )
    };
    let mut happened = cell(&row.outcome.notes);
    let error_kinds: Vec<String> = phases
        .iter()
        .zip(["before", "during", "after"])
        .filter(|(p, _)| p.errors.total() > 0)
        .map(|(p, name)| format!("viewer errors {name}: {}", p.errors))
        .collect();
    if row.pusher_failures.total() > 0 {
        happened += &format!("; normal pushers' failures: {}", row.pusher_failures);
    }
    for (tally, name) in row
        .pusher_reconnects
        .iter()
        .zip(["before", "during", "after"])
    {
        if tally.total() > 0 {
            happened += &format!("; pusher connections lost {name}: {tally}");
        }
    }
    if !error_kinds.is_empty() {
        happened += &format!("; {}", error_kinds.join("; "));
    }
    let table_row = format!(
        "| {} | **{}**: {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        row.number,
        row.title,
        cell(&row.what),
        latency.join(" · "),
        fps.join(" · "),
        errors.join(" · "),
        reconnects.join(" · "),
        cell(&recovered),
        usage(|u| u.threads.to_string()),
        usage(|u| u.fds.to_string()),
        usage(|u| format!("{:.1}", u.rss_mb())),
        happened
    );
    let mut below = String::new();
    if let Some(details) = &row.outcome.details {
        let _ = write!(below, "\n### {}. {}\n\n{details}", row.number, row.title);
    }
    if !row.failures.is_empty() || !row.outcome.findings.is_empty() {
        let _ = writeln!(below, "\n### {}. {}: problems\n", row.number, row.title);
        for failure in &row.failures {
            let _ = writeln!(below, "- **failure**: {}", cell(failure));
        }
        for finding in &row.outcome.findings {
            let _ = writeln!(below, "- finding: {}", cell(finding));
        }
    }
    Rendered {
        row: table_row,
        below,
    }
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_string(), |ms| format!("{ms:.2}"))
}

/// Text safe inside a table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// Used by the soak test for its own figures.
pub fn phase_line(figures: &PhaseFigures) -> String {
    format!(
        "latency p50 {} ms, p99 {} ms; {:.1} fps per viewer; {}/{} viewers got frames; \
         viewer errors: {}",
        ms(figures.p50_ms),
        ms(figures.p99_ms),
        figures.fps_median,
        figures.receiving,
        figures.viewers,
        figures.errors
    )
}
