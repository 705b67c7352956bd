//! Attack 11: request heads that are too long, too many, or too slow.
//!
//! The relay reads a request head into one fixed buffer per connection (8 KiB, at most 64
//! header lines), so a client cannot make it hold more for a head, however it sends it: a
//! single long header line, a long request line, many header lines that add up to more than
//! 8 KiB, more than 64 short ones, or ten thousand. Each must be answered 431 (414 for the
//! request line, as RFC 9112 asks) and its connection closed, and a head just inside both limits must still be served (so the limits
//! are where they are said to be). Meanwhile [`Scale::slow_heads`] connections trickle a head
//! a byte a second: the request timeout runs from a head's first byte, so each must be cut
//! off within `--request-timeout` plus [`SLOW_MARGIN`] of it, however recently it sent a byte.
//!
//! The relay's memory is sampled for the whole attack: with a fixed buffer per connection, the
//! floods (`head_floods` copies of each at once, 50 at full scale, a megabyte line among them)
//! cost a few kilobytes each, and the peak must stay within [`RSS_BOUND_KB`] of the baseline.

use std::thread;
use std::time::Duration;

use crate::exchange;
use crate::held::Held;
use crate::http;
use crate::load::Shape;
use crate::resources::{rss_over_bound, PeakSampler, RSS_BOUND_KB};
use crate::scale::{relay_has_timeouts, Scale};
use crate::trial::{self, Outcome, Row, Subject};
use crate::THREAD_STACK_BYTES;

/// How long the floods have to be answered and closed.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);
/// How long past `--request-timeout` a trickled head may stay open.
const SLOW_MARGIN: Duration = Duration::from_secs(3);
/// Consecutive connect failures after which no more slow heads are opened.
const GIVE_UP_AFTER: usize = 20;

/// The endless head a slow connection trickles: a request line, then one header line that
/// never ends.
fn slow_byte(position: usize) -> u8 {
    const HEAD: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ";
    HEAD.get(position).copied().unwrap_or(b'a')
}

/// A flood case: what it is, the bytes, and the status it must get.
struct Flood {
    label: &'static str,
    bytes: Vec<u8>,
    status: u16,
}

fn floods() -> Vec<Flood> {
    let close = "Host: t\r\nConnection: close\r\n\r\n";
    let line = |bytes: usize| {
        format!(
            "GET /healthz HTTP/1.1\r\nX-Long: {}\r\n{close}",
            "a".repeat(bytes)
        )
    };
    let headers = |count: usize, value: usize| -> String {
        (0..count)
            .map(|i| format!("X-H{i}: {}\r\n", "v".repeat(value)))
            .collect()
    };
    vec![
        Flood {
            label: "one 16 KiB header line",
            bytes: line(16 * 1024).into_bytes(),
            status: 431,
        },
        Flood {
            label: "one 1 MiB header line",
            bytes: line(1024 * 1024).into_bytes(),
            status: 431,
        },
        Flood {
            label: "a 16 KiB request line",
            bytes: format!(
                "GET /healthz?pad={} HTTP/1.1\r\n{close}",
                "a".repeat(16 * 1024)
            )
            .into_bytes(),
            // RFC 9112 §3: a request-target longer than the server parses is a 414.
            status: 414,
        },
        Flood {
            label: "40 header lines of 250 bytes (10 KiB)",
            bytes: format!("GET /healthz HTTP/1.1\r\n{}{close}", headers(40, 240)).into_bytes(),
            status: 431,
        },
        Flood {
            label: "65 short header lines (under 1 KiB)",
            bytes: format!("GET /healthz HTTP/1.1\r\nHost: t\r\n{}\r\n", headers(64, 1))
                .into_bytes(),
            status: 431,
        },
        Flood {
            label: "10,000 header lines",
            bytes: format!("GET /healthz HTTP/1.1\r\n{}{close}", headers(10_000, 1)).into_bytes(),
            status: 431,
        },
        Flood {
            label: "64 header lines, 7 KiB in all (within both limits)",
            bytes: format!("GET /healthz HTTP/1.1\r\n{}{close}", headers(62, 100)).into_bytes(),
            status: 200,
        },
    ]
}

pub fn header_floods(scale: &Scale) -> Row {
    let relay = trial::start_relay(scale);
    let subject = Subject::new(relay.pid(), relay.addr);
    let floods = floods();
    let labels: Vec<&str> = floods.iter().map(|flood| flood.label).collect();
    let what = format!(
        "{} copies at once of each of, in turn: {}; meanwhile {} heads trickled a byte a second, held up \
         to --request-timeout + {} s; RSS within +{} MB",
        scale.head_floods,
        labels.join("; "),
        scale.slow_heads,
        SLOW_MARGIN.as_secs(),
        RSS_BOUND_KB / 1024
    );
    trial::run(
        11,
        "header floods",
        what,
        &subject,
        Shape::NORMAL,
        scale,
        |context| {
            let target = context.target();
            let sampler = PeakSampler::start(context.subject.pid);
            let mut slow = Held::open(
                target,
                scale.slow_heads,
                http::CONNECT_TIMEOUT,
                GIVE_UP_AFTER,
                |_| vec![slow_byte(0)],
            );
            let exchanges = thread::scope(|scope| {
                // One kind at a time, its copies at once: with the slow heads and the normal
                // load, that stays under the relay's connection cap.
                let flooding = thread::Builder::new()
                    .name("abuse-head-floods".into())
                    .stack_size(THREAD_STACK_BYTES)
                    .spawn_scoped(scope, || {
                        floods
                            .iter()
                            .flat_map(|flood| {
                                let copies = vec![(flood.bytes.clone(), false); scale.head_floods];
                                exchange::all_at_once(target, &copies, ANSWER_WITHIN)
                            })
                            .collect::<Vec<_>>()
                    })
                    .expect("start the flooding thread");
                // The first byte went out with the connection.
                slow.hold(
                    scale.request_timeout + SLOW_MARGIN,
                    Some((Duration::from_secs(1), &|sent| slow_byte(sent + 1))),
                );
                flooding.join().expect("the flooding thread panicked")
            });
            let peak = sampler.finish();

            let mut failures = Vec::new();
            let mut lines = Vec::new();
            for (flood, mine) in floods.iter().zip(exchanges.chunks(scale.head_floods)) {
                let wrong = mine
                    .iter()
                    .filter(|e| !e.is_then_closed(flood.status))
                    .count();
                let tally = exchange::tally(mine);
                if wrong > 0 {
                    failures.push(format!(
                        "{}: {wrong} of {} not answered {} and closed ({tally})",
                        flood.label,
                        mine.len(),
                        flood.status
                    ));
                }
                lines.push(format!("| {} | {} | {tally} |", flood.label, flood.status));
            }
            if relay_has_timeouts() && slow.still_open() > 0 {
                failures.push(format!(
                    "{} of {} heads trickled a byte a second still open {} s after their first \
                     byte, with --request-timeout {} s",
                    slow.still_open(),
                    slow.opened(),
                    (scale.request_timeout + SLOW_MARGIN).as_secs(),
                    scale.request_timeout.as_secs()
                ));
            }
            failures.extend(rss_over_bound(peak, context.baseline, "the floods"));
            let floods_right = exchanges
                .iter()
                .zip(
                    floods
                        .iter()
                        .flat_map(|f| std::iter::repeat_n(f.status, scale.head_floods)),
                )
                .filter(|(e, status)| e.is_then_closed(*status))
                .count();
            Outcome {
                notes: format!(
                    "floods answered as required: {floods_right} of {}; peak RSS {:.1} MB \
                     (baseline {:.1} MB, +{:.1} MB); slow heads: {}",
                    exchanges.len(),
                    peak.rss_mb(),
                    context.baseline.rss_mb(),
                    peak.rss_kb.saturating_sub(context.baseline.rss_kb) as f64 / 1024.0,
                    slow.summary()
                ),
                details: Some(format!(
                    "| head | must be | answers |\n|---|---|---|\n{}\n",
                    lines.join("\n")
                )),
                failures,
                ..Outcome::default()
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_lines(head: &[u8]) -> usize {
        let text = String::from_utf8_lossy(head);
        text.trim_end_matches("\r\n").split("\r\n").count() - 1
    }

    #[test]
    fn the_cases_are_on_the_side_of_the_limits_they_claim() {
        let floods = floods();
        let control = floods.iter().find(|f| f.status == 200).unwrap();
        assert_eq!(header_lines(&control.bytes), 64);
        assert!(
            control.bytes.len() < 7 * 1024 + 512,
            "{}",
            control.bytes.len()
        );
        assert!(control.bytes.len() > 6 * 1024);
        let many = floods.iter().find(|f| f.label.starts_with("65")).unwrap();
        assert_eq!(header_lines(&many.bytes), 65);
        assert!(many.bytes.len() < 1024);
        let wide = floods.iter().find(|f| f.label.starts_with("40")).unwrap();
        assert!(header_lines(&wide.bytes) <= 64);
        assert!(wide.bytes.len() > 8 * 1024);
        for flood in &floods {
            assert!(flood.bytes.ends_with(b"\r\n\r\n"), "{}", flood.label);
        }
    }

    #[test]
    fn a_slow_head_never_ends() {
        let head: Vec<u8> = (0..100).map(slow_byte).collect();
        assert!(head.starts_with(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: a"));
        assert!(!head.windows(4).any(|w| w == b"\r\n\r\n"));
    }
}
