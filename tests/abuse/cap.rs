//! Attack 14: more connections than `--max-connections`.
//!
//! Every open connection costs the relay a thread and a descriptor, so their number is capped,
//! and a client over the cap must learn that at once and cheaply: a short `503` with
//! `Retry-After`, then the close, rather than a connection that hangs or a silent reset that
//! looks like a crash. Here idle connections are opened up to the cap ([`Scale::connection_cap`],
//! the default 256 at full scale), which with the normal load's connections puts the relay
//! over it, and then [`Scale::over_cap`] more connections each ask for `/healthz`: every one
//! must be answered 503 with `Retry-After` and a body under [`SHORT`] bytes, then closed. The
//! normal pushers and viewers, connected before, must keep streaming through it. The relay's
//! request timeout is left at its default (10 s), so the idle connections stay open until the
//! attack closes them.

use std::time::Duration;

use crate::exchange;
use crate::held::Held;
use crate::http;
use crate::load::Shape;
use crate::scale::Scale;
use crate::trial::{self, Outcome, Row, Subject};

/// The relay's default `--max-connections`.
const DEFAULT_CAP: usize = 256;
/// Largest body a refusal over the cap may have.
const SHORT: usize = 1024;
/// How long the connections over the cap have to be answered and closed.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);
/// Consecutive connect failures after which no more idle connections are opened.
const GIVE_UP_AFTER: usize = 20;

pub fn over_the_cap(scale: &Scale) -> Row {
    let mut args = scale.patient_relay_args();
    if let Some(cap) = scale.connection_cap {
        args.extend(["--max-connections".to_string(), cap.to_string()]);
    }
    let cap = scale.connection_cap.unwrap_or(DEFAULT_CAP);
    let relay = trial::start_relay_with(args);
    let subject = Subject::new(relay.pid(), relay.addr);
    let what = format!(
        "relay with --max-connections {cap}; {cap} idle connections opened on top of the \
         normal load, then {} more ask for /healthz: each must get a short 503 with \
         Retry-After and the close",
        scale.over_cap
    );
    trial::run(
        14,
        "over the connection cap",
        what,
        &subject,
        Shape::NORMAL,
        scale,
        |context| {
            let target = context.target();
            let mut idle = Held::open(target, cap, http::CONNECT_TIMEOUT, GIVE_UP_AFTER, |_| {
                Vec::new()
            });
            let request = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n".to_vec();
            let requests = vec![(request, false); scale.over_cap];
            let over = exchange::all_at_once(target, &requests, ANSWER_WITHIN);
            idle.sweep();
            let refused_right = |e: &exchange::Exchange| {
                e.is_then_closed(503)
                    && e.answer().is_some_and(|answer| {
                        answer.header("Retry-After").is_some() && answer.body.len() < SHORT
                    })
            };
            let wrong = over.iter().filter(|e| !refused_right(e)).count();
            let mut failures = Vec::new();
            if wrong > 0 {
                failures.push(format!(
                    "{wrong} of {} connections over the cap not answered a short 503 with \
                     Retry-After and closed ({})",
                    over.len(),
                    exchange::tally(&over)
                ));
            }
            let notes = format!(
                "idle: {}; over the cap: {}",
                idle.summary(),
                exchange::tally(&over)
            );
            drop(idle);
            Outcome {
                notes,
                failures,
                ..Outcome::default()
            }
        },
    )
}
