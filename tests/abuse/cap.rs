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
//!
//! Over HTTPS the idle connections have finished their handshake and sent nothing, the uploads
//! hold their body inside TLS, and both ports share the one cap. A newcomer over the cap on
//! the HTTPS port cannot be told 503 (plain text would be garbage to a TLS client), so there
//! the relay must close it at once, during its handshake: each of those must fail to connect
//! with a close or a reset, never hang. And a newcomer on the plain port at the same moment
//! must still get its short 503 with `Retry-After`.

use std::time::Duration;

use crate::exchange;
use crate::held::Held;
use crate::http;
use crate::load::Shape;
use crate::port::Port;
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

pub fn over_the_cap(scale: &Scale, port: Port) -> Row {
    let mut args = port.relay_args(scale.patient_relay_args());
    if let Some(cap) = scale.connection_cap {
        args.extend(["--max-connections".to_string(), cap.to_string()]);
    }
    let cap = scale.connection_cap.unwrap_or(DEFAULT_CAP);
    let relay = trial::start_relay_with(args);
    let subject = Subject::on(&relay, port);
    let refusal = match port {
        Port::Plain => "each must get a short 503 with Retry-After and the close",
        Port::Https => {
            "over HTTPS each must be closed during its handshake, and as many on the plain \
             port each get a short 503 with Retry-After and the close"
        }
    };
    let what = format!(
        "relay with --max-connections {cap}; {} idle connections, then {cap} uploads holding \
         their body on top of the normal load (the idle ones must make room), then {} more ask \
         for /healthz: {refusal}",
        scale.over_cap, scale.over_cap
    );
    trial::run(
        14,
        &port.title("over the connection cap"),
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
            // Over HTTPS, the plain port's newcomers at the same moment.
            let plain_over = match port {
                Port::Plain => Vec::new(),
                Port::Https => exchange::all_at_once(context.plain(), &requests, ANSWER_WITHIN),
            };
            idle.sweep();
            uploads.sweep();
            let refused_right = |e: &exchange::Exchange| {
                e.is_then_closed(503)
                    && e.answer().is_some_and(|answer| {
                        answer.header("Retry-After").is_some() && answer.body.len() < SHORT
                    })
            };
            // `http::failure_kind` of a close or a reset in the middle of the handshake.
            let closed_in_handshake = |e: &exchange::Exchange| matches!(e, exchange::Exchange::Failed(why) if why == "connect disconnected");
            let wrong = match port {
                Port::Plain => over.iter().filter(|e| !refused_right(e)).count(),
                Port::Https => over.iter().filter(|e| !closed_in_handshake(e)).count(),
            };
            let plain_wrong = plain_over.iter().filter(|e| !refused_right(e)).count();
            let mut failures = Vec::new();
            if idle.still_open() > 0 {
                failures.push(format!(
                    "{} of {} idle connections were not closed to make room for busy ones",
                    idle.still_open(),
                    idle.opened()
                ));
            }
            if wrong > 0 {
                let expected = match port {
                    Port::Plain => "answered a short 503 with Retry-After and closed",
                    Port::Https => "closed during the handshake",
                };
                failures.push(format!(
                    "{wrong} of {} connections over the cap not {expected} ({})",
                    over.len(),
                    exchange::tally(&over)
                ));
            }
            if plain_wrong > 0 {
                failures.push(format!(
                    "{plain_wrong} of {} connections over the cap on the plain port not \
                     answered a short 503 with Retry-After and closed ({})",
                    plain_over.len(),
                    exchange::tally(&plain_over)
                ));
            }
            let mut notes = format!(
                "idle: {}; uploads: {}; over the cap: {}",
                idle.summary(),
                uploads.summary(),
                exchange::tally(&over)
            );
            if !plain_over.is_empty() {
                notes += &format!(
                    "; over the cap on the plain port: {}",
                    exchange::tally(&plain_over)
                );
            }
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
