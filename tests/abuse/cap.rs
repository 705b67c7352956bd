//! Attack 14: more connections than `--max-connections`.
//!
//! Every open connection costs the relay a thread and a descriptor, so their number is capped,
//! and a client over the cap must learn that at once and cheaply: a short `503` with
//! `Retry-After`, then the close, rather than a connection that hangs or a silent reset that
//! looks like a crash; unless a connection has been waiting over a second for a request head,
//! which then makes room for the newcomer.
//!
//! Here [`Scale::over_cap`] idle connections are opened first and left waiting; then uploads
//! that send their head and hold their body are opened up to the cap ([`Scale::connection_cap`],
//! the default 256 at full scale), which with the normal load's connections puts the relay over
//! it: the idle connections must be the ones closed to make room. Then [`Scale::over_cap`] more
//! connections each ask for `/healthz`: with every connection busy, each must be answered 503
//! with `Retry-After` and a body under [`SHORT`] bytes, then closed. The normal pushers and
//! viewers, connected before, must keep streaming through it. The relay's push timeout is left
//! at its default (60 s), so the uploads stay open until the attack closes them.

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
/// Longer than the relay waits before a connection waiting for a head may make room.
const RECLAIMABLE_AFTER: Duration = Duration::from_millis(1500);
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
        "relay with --max-connections {cap}; {} idle connections, then {cap} uploads holding \
         their body on top of the normal load (the idle ones must make room), then {} more ask \
         for /healthz: each must get a short 503 with Retry-After and the close",
        scale.over_cap, scale.over_cap
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
            let mut idle = Held::open(
                target,
                scale.over_cap,
                http::CONNECT_TIMEOUT,
                GIVE_UP_AFTER,
                |_| Vec::new(),
            );
            // Long enough for every idle connection to count as waiting (over a second).
            std::thread::sleep(RECLAIMABLE_AFTER);
            let mut uploads =
                Held::open(target, cap, http::CONNECT_TIMEOUT, GIVE_UP_AFTER, |index| {
                    format!(
                        "POST /pump_push/cap_{index} HTTP/1.1\r\nHost: t\r\n\
                         Content-Type: image/jpeg\r\nContent-Length: 1000\r\n\r\n"
                    )
                    .into_bytes()
                });
            let request = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n".to_vec();
            let requests = vec![(request, false); scale.over_cap];
            let over = exchange::all_at_once(target, &requests, ANSWER_WITHIN);
            idle.sweep();
            uploads.sweep();
            let refused_right = |e: &exchange::Exchange| {
                e.is_then_closed(503)
                    && e.answer().is_some_and(|answer| {
                        answer.header("Retry-After").is_some() && answer.body.len() < SHORT
                    })
            };
            let wrong = over.iter().filter(|e| !refused_right(e)).count();
            let mut failures = Vec::new();
            if idle.still_open() > 0 {
                failures.push(format!(
                    "{} of {} idle connections were not closed to make room for busy ones",
                    idle.still_open(),
                    idle.opened()
                ));
            }
            if wrong > 0 {
                failures.push(format!(
                    "{wrong} of {} connections over the cap not answered a short 503 with \
                     Retry-After and closed ({})",
                    over.len(),
                    exchange::tally(&over)
                ));
            }
            let notes = format!(
                "idle: {}; uploads: {}; over the cap: {}",
                idle.summary(),
                uploads.summary(),
                exchange::tally(&over)
            );
            drop(idle);
            drop(uploads);
            Outcome {
                notes,
                failures,
                ..Outcome::default()
            }
        },
    )
}
