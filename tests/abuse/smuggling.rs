//! Attack 12: request smuggling: a second request hidden where only body bytes should be.
//!
//! When the relay and a proxy in front of it (or the relay and itself, on a kept-alive
//! connection) disagree on where a body ends, bytes the client sent as body are read as a
//! request of their own. RFC 9112 §6 leaves a server one safe course: a request whose body
//! framing is ambiguous or unsupported (`Transfer-Encoding` together with `Content-Length`, a
//! transfer coding whose last is not `chunked`, a `Content-Length` that is not one plain
//! number, a chunk-size line that is bad or too long) is answered 400 and its connection
//! closed; and a body the server refuses or does not read closes the connection too, since
//! nothing after it can be told apart from body. So every attempt here carries, where the
//! body or its rest would be, a complete `DELETE /api/devices/victim` and a `GET /healthz`,
//! and each attempt must get exactly one answer (of the status RFC 9112 calls for, where it
//! names one) followed by the close within [`CLOSE_WITHIN`], half the relay's request timeout
//! (left at its default here). Attempts go out [`exchange::AT_ONCE`] at a time, under the
//! relay's connection cap. A second answer on any of them fails the attack, and the
//! device `victim`, pushed before the attempts, must still be there after them.

use std::time::Duration;

use crate::bodies::HUGE_LENGTH;
use crate::exchange::{self, After, Exchange};
use crate::frames::Frame;
use crate::load::{Shape, FRAME_BYTES};
use crate::probe;
use crate::scale::{Scale, PATIENT_REQUEST_TIMEOUT};
use crate::trial::{self, Outcome, Row, Subject};

/// How soon after the last attempt went out every answer and close must have come.
const CLOSE_WITHIN: Duration = Duration::from_secs(5);
/// The device the smuggled `DELETE` aims at.
const VICTIM: &str = "victim";
/// The requests hidden in every attempt.
const SMUGGLED: &str = "DELETE /api/devices/victim HTTP/1.1\r\nHost: t\r\n\r\n\
                        GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";

/// What an attempt must get.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// This status, then the close.
    Status(u16),
    /// Any answer, then the close (the relay may or may not support the coding).
    AnyThenClosed,
    /// This status; the connection may stay open, since the body may have been read whole.
    StatusMayStayOpen(u16),
}

struct Attempt {
    label: String,
    bytes: Vec<u8>,
    expect: Expect,
}

fn attempt(label: &str, head: &str, body: &[u8], expect: Expect) -> Attempt {
    let mut bytes = head.as_bytes().to_vec();
    bytes.extend_from_slice(body);
    Attempt {
        label: label.to_string(),
        bytes,
        expect,
    }
}

/// `body` with the smuggled requests after it.
fn then_smuggled(body: &str) -> Vec<u8> {
    format!("{body}{SMUGGLED}").into_bytes()
}

fn attempts() -> Vec<Attempt> {
    let push = "POST /pump_push/cam_smuggle HTTP/1.1\r\nHost: t\r\nContent-Type: image/jpeg\r\n";
    let last_chunk = "0\r\n\r\n";
    let smuggled_len = SMUGGLED.len();
    let with_it = last_chunk.len() + smuggled_len;
    let long_size_line = format!("5;ext={}\r\nhello\r\n0\r\n\r\n", "a".repeat(16 * 1024));
    use Expect::*;
    vec![
        attempt(
            "CL.TE: `Content-Length: 5` then `Transfer-Encoding: chunked`",
            &format!("{push}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
            &then_smuggled(last_chunk),
            Status(400),
        ),
        attempt(
            "TE.CL: `Transfer-Encoding: chunked` then a Content-Length covering the hidden requests",
            &format!("{push}Transfer-Encoding: chunked\r\nContent-Length: {with_it}\r\n\r\n"),
            &then_smuggled(last_chunk),
            Status(400),
        ),
        attempt(
            "TE and CL on `GET /healthz`",
            "GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            &then_smuggled(last_chunk),
            Status(400),
        ),
        attempt(
            "`Transfer-Encoding : chunked` (space before the colon) with Content-Length",
            &format!("{push}Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n"),
            &then_smuggled(last_chunk),
            Status(400),
        ),
        attempt(
            "`Transfer-Encoding: gzip, chunked` (no gzip decoding: any answer, then the close)",
            &format!("{push}Transfer-Encoding: gzip, chunked\r\n\r\n"),
            &then_smuggled(last_chunk),
            AnyThenClosed,
        ),
        attempt(
            "`Transfer-Encoding: chunked, gzip`",
            &format!("{push}Transfer-Encoding: chunked, gzip\r\n\r\n"),
            &then_smuggled(last_chunk),
            Status(400),
        ),
        attempt(
            "`Transfer-Encoding: gzip`",
            &format!("{push}Transfer-Encoding: gzip\r\n\r\n"),
            &then_smuggled(last_chunk),
            Status(400),
        ),
        attempt(
            "`Transfer-Encoding: xchunked`",
            &format!("{push}Transfer-Encoding: xchunked\r\n\r\n"),
            &then_smuggled(last_chunk),
            Status(400),
        ),
        attempt(
            "two Transfer-Encoding lines, `chunked` then `identity`",
            &format!("{push}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n"),
            &then_smuggled(last_chunk),
            Status(400),
        ),
        attempt(
            "chunked push refused for its device id (`/pump_push/%2e%2e`), chunks left unread",
            "POST /pump_push/%2e%2e HTTP/1.1\r\nHost: t\r\nContent-Type: image/jpeg\r\n\
             Transfer-Encoding: chunked\r\n\r\n",
            &then_smuggled("4\r\nabcd\r\n0\r\n\r\n"),
            Status(400),
        ),
        attempt(
            "chunked push with a bad chunk-size line `zz`",
            &format!("{push}Transfer-Encoding: chunked\r\n\r\n"),
            &then_smuggled("zz\r\nhello\r\n0\r\n\r\n"),
            Status(400),
        ),
        attempt(
            "chunked push with a 16 KiB chunk-size line",
            &format!("{push}Transfer-Encoding: chunked\r\n\r\n"),
            &then_smuggled(&long_size_line),
            Status(400),
        ),
        attempt(
            "chunked push with a chunk size over 64 bits",
            &format!("{push}Transfer-Encoding: chunked\r\n\r\n"),
            &then_smuggled("1000000000000000000005\r\nhello\r\n0\r\n\r\n"),
            Status(400),
        ),
        attempt(
            "CL.CL: `Content-Length: 5` and `Content-Length: 50`",
            &format!("{push}Content-Length: 5\r\nContent-Length: 50\r\n\r\n"),
            &then_smuggled(""),
            Status(400),
        ),
        attempt(
            "`Content-Length: 5, 50`",
            &format!("{push}Content-Length: 5, 50\r\n\r\n"),
            &then_smuggled(""),
            Status(400),
        ),
        attempt(
            "`Content-Length: -1`",
            &format!("{push}Content-Length: -1\r\n\r\n"),
            &then_smuggled(""),
            Status(400),
        ),
        attempt(
            "`Content-Length: +5`",
            &format!("{push}Content-Length: +5\r\n\r\n"),
            &then_smuggled(""),
            Status(400),
        ),
        attempt(
            "`Content-Length: abc`",
            &format!("{push}Content-Length: abc\r\n\r\n"),
            &then_smuggled(""),
            Status(400),
        ),
        attempt(
            "push declaring more than the frame cap (5,000,000 bytes), refused unread",
            &format!("{push}Content-Length: 5000000\r\n\r\n"),
            &then_smuggled(""),
            Status(413),
        ),
        attempt(
            "`GET /healthz` declaring a 1 TiB body",
            &format!("GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: {HUGE_LENGTH}\r\n\r\n"),
            &then_smuggled(""),
            Status(200),
        ),
        attempt(
            "`GET /healthz` whose short body is exactly the hidden requests",
            &format!("GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: {smuggled_len}\r\n\r\n"),
            &then_smuggled(""),
            StatusMayStayOpen(200),
        ),
    ]
}

pub fn smuggling(scale: &Scale) -> Row {
    let relay = trial::start_relay_with(scale.patient_relay_args());
    let subject = Subject::new(relay.pid(), relay.addr);
    let attempts = attempts();
    let what = format!(
        "{} ways of hiding `DELETE /api/devices/{VICTIM}` and `GET /healthz` in a body (TE+CL, \
         codings not ending in chunked, bad and long chunk sizes, chunks left after a refused \
         push, CL.CL, bad Content-Length, unread bodies), each sent {} times ({} at once \
         at most); each must get one answer and the close within {} s (request timeout {} s); answers below",
        attempts.len(),
        scale.smuggling_repeats,
        exchange::AT_ONCE,
        CLOSE_WITHIN.as_secs(),
        PATIENT_REQUEST_TIMEOUT.as_secs()
    );
    trial::run(
        12,
        "request smuggling",
        what,
        &subject,
        Shape::NORMAL,
        scale,
        |context| {
            let target = context.target();
            let mut failures = Vec::new();
            let victim = push_victim(target);
            if !victim.is_then_closed(200) {
                failures.push(format!("the push to `{VICTIM}` was answered {victim}"));
            }
            let requests: Vec<(Vec<u8>, bool)> = attempts
                .iter()
                .flat_map(|a| (0..scale.smuggling_repeats).map(|_| (a.bytes.clone(), false)))
                .collect();
            let exchanges = exchange::in_batches(target, &requests, CLOSE_WITHIN);
            let mut lines = Vec::new();
            let mut second_answers = 0;
            for (attempt, mine) in attempts
                .iter()
                .zip(exchanges.chunks(scale.smuggling_repeats))
            {
                let tally = exchange::tally(mine);
                let seconds = mine
                    .iter()
                    .filter(|e| matches!(e.answer().map(|a| &a.after), Some(After::More(_))))
                    .count();
                second_answers += seconds;
                if seconds > 0 {
                    failures.push(format!(
                        "{}: bytes after the answer, the hidden requests answered ({tally})",
                        attempt.label
                    ));
                } else {
                    let wrong = mine
                        .iter()
                        .filter(|e| !as_expected(e, attempt.expect))
                        .count();
                    if wrong > 0 {
                        failures.push(format!(
                            "{}: {wrong} of {} not answered {} ({tally})",
                            attempt.label,
                            mine.len(),
                            expected_words(attempt.expect)
                        ));
                    }
                }
                lines.push(format!(
                    "| {} | {} | {tally} |",
                    attempt.label,
                    expected_words(attempt.expect)
                ));
            }
            let victim_there = device_listed(target, VICTIM);
            if victim_there != Some(true) {
                failures.push(match victim_there {
                    Some(_) => format!("`{VICTIM}` is gone: a hidden DELETE was carried out"),
                    None => "/api/devices did not answer after the attempts".to_string(),
                });
            }
            Outcome {
                notes: format!(
                    "{} attempts; second answers: {second_answers}; `{VICTIM}` still listed: {}",
                    exchanges.len(),
                    victim_there.map_or("unknown", |there| if there { "yes" } else { "no" })
                ),
                details: Some(format!(
                    "| attempt (with the hidden requests after it) | must be | answers |\n\
                     |---|---|---|\n{}\n",
                    lines.join("\n")
                )),
                failures,
                ..Outcome::default()
            }
        },
    )
}

fn as_expected(exchange: &Exchange, expect: Expect) -> bool {
    let Some(answer) = exchange.answer() else {
        return false;
    };
    match expect {
        Expect::Status(status) => answer.status == status && answer.then_closed(),
        Expect::AnyThenClosed => answer.then_closed(),
        Expect::StatusMayStayOpen(status) => {
            answer.status == status
                && matches!(answer.after, After::Closed | After::Reset | After::Open)
        }
    }
}

fn expected_words(expect: Expect) -> String {
    match expect {
        Expect::Status(status) => format!("{status}, then closed"),
        Expect::AnyThenClosed => "any answer, then closed".to_string(),
        Expect::StatusMayStayOpen(status) => format!("{status}, nothing more"),
    }
}

/// Pushes one frame to the victim device, on a connection of its own.
fn push_victim(target: &crate::http::Target) -> Exchange {
    let frame = Frame::new(FRAME_BYTES, 0);
    let mut bytes = format!(
        "POST /pump_push/{VICTIM} HTTP/1.1\r\nHost: t\r\nContent-Type: image/jpeg\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        frame.bytes().len()
    )
    .into_bytes();
    bytes.extend_from_slice(frame.bytes());
    exchange::all_at_once(target, &[(bytes, false)], CLOSE_WITHIN)
        .pop()
        .unwrap_or(Exchange::NoAnswer)
}

/// Whether `/api/devices` lists `id`; `None` if it did not answer.
fn device_listed(target: &crate::http::Target, id: &str) -> Option<bool> {
    let devices = probe::devices(target)?;
    Some(
        devices
            .iter()
            .any(|device| device["id"].as_str() == Some(id)),
    )
}
