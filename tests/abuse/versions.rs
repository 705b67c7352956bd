//! Attack 10: request lines of HTTP versions the relay does not speak, by the thousand.
//!
//! A client that tries HTTP/2 first (prior knowledge, `curl --http2-prior-knowledge`, a
//! misconfigured proxy) opens with the connection preface `PRI * HTTP/2.0`, or sends an
//! ordinary request line marked `HTTP/2.0`; scanners try any version. The relay speaks
//! HTTP/1.0 and 1.1 only, so each must be answered `505 HTTP Version Not Supported` and its
//! connection closed, and none may cost anything once answered: a server that leaves a
//! thread or a descriptor behind per such line can be run out of both by anyone who can
//! connect. So [`Scale::http2_lines`] of them are sent (1,000 at full scale, far more than a
//! per-line leftover could survive), [`BATCH`] at a time, every one must get its 505 and a
//! close, and the trial's recovery check then wants the relay's threads and descriptors back
//! at the baseline exactly.

use std::time::Duration;

use crate::exchange::{self, Exchange};
use crate::load::Shape;
use crate::resources::Usage;
use crate::scale::Scale;
use crate::trial::{self, Outcome, Row, Subject};

/// Connections open at once: well under `--max-connections`, so that every line is the
/// relay's to answer rather than its connection cap's.
const BATCH: usize = 50;
/// How long a batch has to be answered and closed.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);
/// Batches in a row with a wrong answer after which no more are sent (the report says so).
const GIVE_UP_AFTER: usize = 3;

/// The lines, sent in turn.
const KINDS: [(&str, &[u8]); 4] = [
    ("`GET / HTTP/2.0`", b"GET / HTTP/2.0\r\nHost: t\r\n\r\n"),
    (
        "HTTP/2 preface `PRI * HTTP/2.0`",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    ),
    (
        "`GET /healthz HTTP/3.0`",
        b"GET /healthz HTTP/3.0\r\nHost: t\r\n\r\n",
    ),
    (
        "`GET /healthz HTTP/1.2`",
        b"GET /healthz HTTP/1.2\r\nHost: t\r\n\r\n",
    ),
];

pub fn unsupported_versions(scale: &Scale) -> Row {
    let relay = trial::start_relay(scale);
    let subject = Subject::new(relay.pid(), relay.addr);
    let kinds: Vec<&str> = KINDS.iter().map(|(label, _)| *label).collect();
    let what = format!(
        "{} request lines of unsupported versions ({}, in turn), {BATCH} connections at a \
         time; each must be answered 505 and closed",
        scale.http2_lines,
        kinds.join(", ")
    );
    trial::run(
        10,
        "HTTP/2 and other versions",
        what,
        &subject,
        Shape::NORMAL,
        scale,
        |context| {
            let target = context.target();
            let mut by_kind: Vec<Vec<Exchange>> = vec![Vec::new(); KINDS.len()];
            let mut sent = 0;
            let mut bad_batches = 0;
            let mut stopped = None;
            while sent < scale.http2_lines {
                let count = BATCH.min(scale.http2_lines - sent);
                let requests: Vec<(Vec<u8>, bool)> = (sent..sent + count)
                    .map(|i| (KINDS[i % KINDS.len()].1.to_vec(), false))
                    .collect();
                let answers = exchange::all_at_once(target, &requests, ANSWER_WITHIN);
                let all_right = answers.iter().all(|answer| answer.is_then_closed(505));
                for (i, answer) in (sent..sent + count).zip(answers) {
                    by_kind[i % KINDS.len()].push(answer);
                }
                sent += count;
                bad_batches = if all_right { 0 } else { bad_batches + 1 };
                if Usage::read(context.subject.pid).is_err() {
                    stopped = Some(format!("the relay exited after {sent} lines"));
                    break;
                }
                if bad_batches >= GIVE_UP_AFTER {
                    stopped = Some(format!(
                        "stopped after {sent} lines: {GIVE_UP_AFTER} batches in a row were not \
                         all answered 505"
                    ));
                    break;
                }
            }
            let mut failures = Vec::new();
            let mut answers = Vec::new();
            for ((label, _), exchanges) in KINDS.iter().zip(&by_kind) {
                let wrong = exchanges.iter().filter(|e| !e.is_then_closed(505)).count();
                let tally = exchange::tally(exchanges);
                if wrong > 0 {
                    failures.push(format!(
                        "{label}: {wrong} of {} not answered 505 and closed ({tally})",
                        exchanges.len()
                    ));
                }
                answers.push(format!("{label}: {tally}"));
            }
            if let Some(stopped) = &stopped {
                failures.push(stopped.clone());
            }
            Outcome {
                notes: format!("sent {sent}; {}", answers.join("; ")),
                failures,
                ..Outcome::default()
            }
        },
    )
}
