//! Attack 9: hundreds of requests at once, on every route, each declaring a 1 TiB body.
//!
//! A declared length is a number a client writes; a server that sizes anything by it (a
//! buffer for the body, a discard of "the rest") can be made to ask for any amount of memory
//! with a few bytes, and a failed allocation aborts a Rust process. So the relay must allocate
//! nothing by declared length: a push declaring more than the frame cap gets 413 without a
//! byte of its body being read; every other route answers as it would without a body (the
//! health check 200, an unknown path 404, a stream its stream) and, since the body was not
//! read, closes the connection instead of reading on. Here [`Scale::huge_bodies`] such
//! requests (500 at full scale) are all open at once, spread over every route, each followed
//! by a complete `GET /healthz` in the first bytes of its body, which must never be answered.
//! An answer of 503 with `Retry-After` is right too, for connections over the relay's cap.
//! Every answer must be followed by the close within [`CLOSE_WITHIN`], half the relay's
//! request timeout (which this attack leaves at its default), so the close is the relay's
//! decision and not a timeout. The relay's memory is sampled throughout and must stay within
//! [`RSS_BOUND_KB`] of the baseline.

use std::time::Duration;

use crate::exchange::{self, After, Exchange};
use crate::load::{device_id, Shape};
use crate::resources::{rss_over_bound, PeakSampler, RSS_BOUND_KB};
use crate::scale::{Scale, PATIENT_REQUEST_TIMEOUT};
use crate::trial::{self, Outcome, Row, Subject};

/// The declared length: 1 TiB, far beyond any memory the relay could have; a few hundred of
/// them add up to more than a 64-bit address space.
pub const HUGE_LENGTH: u64 = 1 << 40;
/// How soon after the last request went out every answer and close must have come.
const CLOSE_WITHIN: Duration = Duration::from_secs(5);
/// What each request's body starts with.
const SMUGGLED: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";

/// A route and what it answers without a body.
struct Route {
    method: &'static str,
    /// `{device}` is replaced by a device of the normal load.
    path: &'static str,
    status: u16,
    /// The answer is the endless stream (its head is all that is read).
    stream: bool,
}

const fn route(method: &'static str, path: &'static str, status: u16) -> Route {
    Route {
        method,
        path,
        status,
        stream: false,
    }
}

const ROUTES: [Route; 16] = [
    route("POST", "/pump_push/{device}", 413),
    route("PUT", "/pump_push/{device}", 413),
    route("POST", "/pump_push/huge_body", 413),
    route("GET", "/healthz", 200),
    Route {
        stream: true,
        ..route("GET", "/live.mjpeg?device_id={device}", 200)
    },
    route("HEAD", "/live.mjpeg?device_id={device}", 200),
    route("GET", "/snapshot.jpg?device_id={device}", 200),
    route("HEAD", "/snapshot.jpg?device_id={device}", 200),
    route("GET", "/api/devices", 200),
    route("GET", "/metrics", 200),
    route("GET", "/push.html", 200),
    route("GET", "/", 200),
    route("DELETE", "/api/devices/nobody_here", 404),
    route("OPTIONS", "/pump_push/{device}", 204),
    route("GET", "/no/such/endpoint", 404),
    route("POST", "/healthz", 405),
];

pub fn huge_declared_bodies(scale: &Scale) -> Row {
    let relay = trial::start_relay_with(scale.patient_relay_args());
    let subject = Subject::new(relay.pid(), relay.addr);
    let what = format!(
        "{} requests open at once, spread over {} routes, each declaring `Content-Length: \
         {HUGE_LENGTH}` and sending a complete `GET /healthz` as the start of its body; each \
         must get the route's answer (a push 413) or 503, then the close within {} s \
         (request timeout {} s); RSS within +{} MB",
        scale.huge_bodies,
        ROUTES.len(),
        CLOSE_WITHIN.as_secs(),
        PATIENT_REQUEST_TIMEOUT.as_secs(),
        RSS_BOUND_KB / 1024
    );
    trial::run(
        9,
        "huge declared bodies",
        what,
        &subject,
        Shape::NORMAL,
        scale,
        |context| {
            let devices = context.load.shape.devices;
            let sampler = PeakSampler::start(context.subject.pid);
            let requests: Vec<(Vec<u8>, bool)> = (0..scale.huge_bodies)
                .map(|i| {
                    let route = &ROUTES[i % ROUTES.len()];
                    let device = device_id((i / ROUTES.len()) as u32 % devices);
                    let path = route.path.replace("{device}", &device);
                    let mut bytes = format!(
                        "{} {path} HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\
                         Content-Type: image/jpeg\r\nContent-Length: {HUGE_LENGTH}\r\n\r\n",
                        route.method
                    )
                    .into_bytes();
                    bytes.extend_from_slice(SMUGGLED);
                    (bytes, route.method == "HEAD")
                })
                .collect();
            let exchanges = exchange::all_at_once(context.target(), &requests, CLOSE_WITHIN);
            let peak = sampler.finish();

            let mut failures = Vec::new();
            let mut lines = Vec::new();
            for (index, route) in ROUTES.iter().enumerate() {
                let mine: Vec<&Exchange> =
                    exchanges.iter().skip(index).step_by(ROUTES.len()).collect();
                if mine.is_empty() {
                    continue;
                }
                let wrong = mine.iter().filter(|e| !answered_right(e, route)).count();
                let label = format!("{} {}", route.method, route.path);
                let tally = exchange::tally(mine.iter().copied());
                if wrong > 0 {
                    failures.push(format!(
                        "{label}: {wrong} of {} not answered {}{} ({tally})",
                        mine.len(),
                        route.status,
                        if route.stream {
                            " (a stream)"
                        } else {
                            " (or 503 with Retry-After) and closed"
                        },
                    ));
                }
                lines.push(format!("| {label} | {} | {tally} |", route.status));
            }
            failures.extend(rss_over_bound(peak, context.baseline, "the attack"));
            Outcome {
                notes: format!(
                    "{} answered as their routes require; peak RSS {:.1} MB (baseline {:.1} \
                     MB), threads {}",
                    exchanges.len() - wrong_total(&exchanges),
                    peak.rss_mb(),
                    context.baseline.rss_mb(),
                    peak.threads
                ),
                details: Some(format!(
                    "| route (declaring {HUGE_LENGTH} bytes) | its answer | answers |\n\
                     |---|---|---|\n{}\n",
                    lines.join("\n")
                )),
                failures,
                ..Outcome::default()
            }
        },
    )
}

/// Whether `exchange` is what `route` must answer with a body it does not read.
fn answered_right(exchange: &Exchange, route: &Route) -> bool {
    let Some(answer) = exchange.answer() else {
        return false;
    };
    if answer.status == 503 {
        // The connection cap turns a connection away before reading its request, so a HEAD
        // whose bytes had not arrived yet gets the 503's one-line body too.
        let its_body = route.method == "HEAD"
            && matches!(&answer.after, After::More(more) if more.starts_with(b"server busy"));
        return answer.header("Retry-After").is_some() && (answer.then_closed() || its_body);
    }
    if answer.status != route.status {
        return false;
    }
    match answer.after {
        After::Streaming => route.stream,
        _ => answer.then_closed(),
    }
}

fn wrong_total(exchanges: &[Exchange]) -> usize {
    exchanges
        .iter()
        .enumerate()
        .filter(|(i, e)| !answered_right(e, &ROUTES[i % ROUTES.len()]))
        .count()
}
