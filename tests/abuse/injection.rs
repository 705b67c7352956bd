//! Attack 13: CR and LF smuggled into text the relay echoes, to forge answer headers.
//!
//! The relay quotes parts of a request back: the path in a 404's reason, a bad `fps=` or
//! `advance_headers=` or `action=` in a 400's, a device id in a push's or a stream's refusal,
//! and, with `--allow-origin` listing origins, the `Origin` header itself in
//! `Access-Control-Allow-Origin`. If any of that reached the answer head unescaped, a CR/LF in
//! it would end a header line and start one of the attacker's choosing (`Set-Cookie`), or end
//! the head and start a second answer (response splitting). So every place is tried with
//! percent-encoded `%0d%0a`, `%0a` and `%0d` followed by `Set-Cookie` and `X-Injected`, and
//! with a whole forged answer; and the raw tricks HTTP/1.1 leaves room for are tried on the
//! `Origin` header and the request target: a folded continuation line, a bare CR, a bare LF.
//!
//! Each injected request has a clean twin (the same request without the injected bytes; for
//! the raw tricks on `Origin`, two: the origin listed and one that is not, since a relay may
//! take the mangled value for either). A percent-encoded injection takes the same path through
//! the relay as its twin, so where both get the same status, the injected answer must carry
//! exactly the twin's header names. Otherwise (a raw trick, which a parser may refuse before
//! routing, or a different status) every header name must be one that the clean answers use,
//! no more often than they use it; the clean answers include a few requests that a parser
//! refuses without any CR or LF in them ([`parser_refusals`]). No answer may carry
//! `Set-Cookie` or `X-Injected`, a header line with a bare CR or LF, or anything after its end:
//! every request says `Connection: close`, so one answer and the close is all there may be.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::exchange::{self, After, Answer, Exchange};
use crate::load::Shape;
use crate::scale::Scale;
use crate::trial::{self, Outcome, Row, Subject};

/// The origin the relay is told to allow.
const LISTED_ORIGIN: &str = "http://ha.lan:8123";
/// An origin it is not.
const OTHER_ORIGIN: &str = "http://elsewhere.lan";
/// How long the relay has to answer everything.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);
/// Header names that only an injection can put in an answer.
const FORBIDDEN: [&str; 2] = ["set-cookie", "x-injected"];

/// Percent-encoded injections, for the request target.
const ENCODED: [(&str, &str); 4] = [
    (
        "CRLF",
        "%0d%0aSet-Cookie:%20injected=1%0d%0aX-Injected:%201",
    ),
    ("LF", "%0aSet-Cookie:%20injected=1"),
    ("CR", "%0dSet-Cookie:%20injected=1"),
    (
        "a forged second answer",
        "%0d%0aContent-Length:%200%0d%0a%0d%0aHTTP/1.1%20200%20OK%0d%0aX-Injected:%201%0d%0a%0d%0a",
    ),
];

/// A request and its clean twins.
struct Probe {
    label: String,
    injected: Vec<u8>,
    twins: Vec<Vec<u8>>,
    /// The injection rides in text the relay decodes after parsing (percent-encoding), so
    /// the answer must have exactly the twin's header names when it has the twin's status.
    exact: bool,
}

/// A request with `Host` and `Connection: close` first, then `headers`, then `body`.
fn request(method: &str, target: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let length = if body.is_empty() {
        String::new()
    } else {
        format!(
            "Content-Type: image/jpeg\r\nContent-Length: {}\r\n",
            body.len()
        )
    };
    let mut bytes = format!(
        "{method} {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{length}{headers}\r\n"
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A place where the relay echoes request text.
struct Place {
    name: &'static str,
    method: &'static str,
    /// The request target, with `{}` where the injection goes when `headers` is empty.
    target: &'static str,
    /// What the clean twin has in place of `{}` in the target.
    clean: &'static str,
    /// Extra header lines, with `{}` where the origin goes; empty for target places.
    headers: &'static str,
    /// Whether the request carries a small JPEG (a push).
    push: bool,
}

const fn in_target(
    name: &'static str,
    method: &'static str,
    target: &'static str,
    clean: &'static str,
) -> Place {
    Place {
        name,
        method,
        target,
        clean,
        headers: "",
        push: false,
    }
}

const PLACES: [Place; 10] = [
    in_target("the path of a 404", "GET", "/nope{}", ""),
    in_target("`fps=`", "GET", "/live.mjpeg?device_id=cam_0&fps={}", "abc"),
    in_target(
        "`advance_headers=`",
        "GET",
        "/live.mjpeg?device_id=cam_0&advance_headers={}",
        "abc",
    ),
    in_target("`action=`", "GET", "/?action={}", "dance"),
    Place {
        push: true,
        ..in_target("a pushed device id", "POST", "/pump_push/cam{}", "%20x")
    },
    in_target(
        "a streamed device id",
        "GET",
        "/live.mjpeg?device_id=cam{}",
        "%20x",
    ),
    in_target(
        "a snapshot's device id",
        "GET",
        "/snapshot.jpg?device_id=cam{}",
        "%20x",
    ),
    in_target(
        "a deleted device id",
        "DELETE",
        "/api/devices/cam{}",
        "%20x",
    ),
    Place {
        headers: "Origin: {}\r\n",
        ..in_target("`Origin`", "GET", "/api/devices", "")
    },
    Place {
        headers: "Origin: {}\r\nAccess-Control-Request-Method: POST\r\n",
        ..in_target("a preflight's `Origin`", "OPTIONS", "/pump_push/cam_0", "")
    },
];

fn probes() -> Vec<Probe> {
    let frame = crate::frames::Frame::new(2_000, 0);
    let mut probes = Vec::new();
    for place in &PLACES {
        let body = if place.push { frame.bytes() } else { &[] };
        let (method, target, headers) = (place.method, place.target, place.headers);
        for (kind, injection) in ENCODED {
            let (injected, twin) = if headers.is_empty() {
                (
                    request(method, &target.replace("{}", injection), "", body),
                    request(method, &target.replace("{}", place.clean), "", body),
                )
            } else {
                // Not decoded by anybody: the injection is only an unknown origin's tail.
                let listed_then = format!("{LISTED_ORIGIN}{injection}");
                (
                    request(method, target, &headers.replace("{}", &listed_then), body),
                    request(method, target, &headers.replace("{}", OTHER_ORIGIN), body),
                )
            };
            probes.push(Probe {
                label: format!("{}, {kind} percent-encoded", place.name),
                injected,
                twins: vec![twin],
                exact: true,
            });
        }
    }
    let listed = request(
        "GET",
        "/api/devices",
        &format!("Origin: {LISTED_ORIGIN}\r\n"),
        b"",
    );
    let unlisted = request(
        "GET",
        "/api/devices",
        &format!("Origin: {OTHER_ORIGIN}\r\n"),
        b"",
    );
    for (label, header) in [
        (
            "`Origin` folded onto a second line",
            format!("Origin: {LISTED_ORIGIN}\r\n Set-Cookie: injected=1\r\n"),
        ),
        (
            "`Origin` with a bare CR",
            format!("Origin: {LISTED_ORIGIN}\rSet-Cookie: injected=1\r\n"),
        ),
        (
            "`Origin` with a bare LF",
            format!("Origin: {LISTED_ORIGIN}\nSet-Cookie: injected=1\r\n"),
        ),
    ] {
        probes.push(Probe {
            label: label.to_string(),
            injected: request("GET", "/api/devices", &header, b""),
            twins: vec![listed.clone(), unlisted.clone()],
            exact: false,
        });
    }
    for (label, target, clean) in [
        (
            "the path with a bare CR",
            "/nope\rSet-Cookie:injected=1",
            "/nope",
        ),
        (
            "`fps=` with a bare CR",
            "/live.mjpeg?device_id=cam_0&fps=1\rSet-Cookie:injected=1",
            "/live.mjpeg?device_id=cam_0&fps=abc",
        ),
    ] {
        probes.push(Probe {
            label: label.to_string(),
            injected: request("GET", target, "", b""),
            twins: vec![request("GET", clean, "", b"")],
            exact: false,
        });
    }
    probes
}

/// Requests that a strict HTTP/1.1 parser refuses before routing, without any CR or LF where it
/// does not belong: their answers are clean answers too.
fn parser_refusals() -> Vec<Vec<u8>> {
    vec![
        request("GET", "/nope", "A header line without a colon\r\n", b""),
        request("GET", "/caf\u{e9}", "", b""),
        b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(),
    ]
}

pub fn crlf_injection(scale: &Scale) -> Row {
    let mut args = scale.relay_args();
    args.extend(["--allow-origin".to_string(), LISTED_ORIGIN.to_string()]);
    let relay = trial::start_relay_with(args);
    let subject = Subject::new(relay.pid(), relay.addr);
    let probes = probes();
    let what = format!(
        "relay with `--allow-origin {LISTED_ORIGIN}`; {} requests with CR/LF aimed at every \
         echoed place (404 path, fps, advance_headers, action, device ids of push, stream, \
         snapshot and DELETE, Origin and a preflight's Origin; percent-encoded, folded, bare CR \
         and LF), each with its clean twin, each sent {}×; answers below",
        probes.len(),
        scale.injection_repeats
    );
    trial::run(
        13,
        "CR/LF injection",
        what,
        &subject,
        Shape::NORMAL,
        scale,
        |context| {
            let repeats = scale.injection_repeats;
            let refusals = parser_refusals();
            let requests: Vec<(Vec<u8>, bool)> = refusals
                .iter()
                .map(|refusal| (refusal.clone(), false))
                .chain(probes.iter().flat_map(|probe| {
                    let twins = probe.twins.iter().map(|twin| (twin.clone(), false));
                    twins.chain((0..repeats).map(|_| (probe.injected.clone(), false)))
                }))
                .collect();
            let mut exchanges =
                exchange::in_batches(context.target(), &requests, ANSWER_WITHIN).into_iter();
            let refused: Vec<Exchange> = exchanges.by_ref().take(refusals.len()).collect();
            let per_probe: Vec<(Vec<Exchange>, Vec<Exchange>)> = probes
                .iter()
                .map(|probe| {
                    let twins = exchanges.by_ref().take(probe.twins.len()).collect();
                    (twins, exchanges.by_ref().take(repeats).collect())
                })
                .collect();
            let mut failures = Vec::new();
            let mut allowed: BTreeMap<String, usize> = BTreeMap::new();
            for answer in refused.iter().filter_map(Exchange::answer) {
                for (name, count) in name_counts(answer) {
                    let most = allowed.entry(name).or_default();
                    *most = (*most).max(count);
                }
            }
            for (probe, (twins, _)) in probes.iter().zip(&per_probe) {
                for twin in twins {
                    match twin.answer() {
                        Some(answer) => {
                            for (name, count) in name_counts(answer) {
                                let most = allowed.entry(name).or_default();
                                *most = (*most).max(count);
                            }
                        }
                        None => failures.push(format!("{}: a clean twin got {twin}", probe.label)),
                    }
                }
            }
            let mut lines = Vec::new();
            let mut clean = 0;
            for (probe, (twins, injected)) in probes.iter().zip(&per_probe) {
                let twin_answers: Vec<&Answer> =
                    twins.iter().filter_map(Exchange::answer).collect();
                let mut problems: Vec<String> = Vec::new();
                for exchange in injected {
                    let found = match exchange.answer() {
                        Some(answer) => {
                            let exact = if probe.exact { &twin_answers[..] } else { &[] };
                            problems_with(answer, exact, &allowed)
                        }
                        None => vec![format!("no answer ({exchange})")],
                    };
                    if found.is_empty() {
                        clean += 1;
                    }
                    problems.extend(found);
                }
                problems.sort();
                problems.dedup();
                if !problems.is_empty() {
                    failures.push(format!("{}: {}", probe.label, problems.join("; ")));
                }
                lines.push(format!(
                    "| {} | {} | {} | {} |",
                    probe.label,
                    exchange::tally(twins),
                    exchange::tally(injected),
                    if problems.is_empty() {
                        "none".to_string()
                    } else {
                        problems.join("; ").replace('|', "\\|")
                    }
                ));
            }
            Outcome {
                notes: format!(
                    "{clean} of {} injected requests answered with only the clean twin's \
                     headers and nothing after",
                    probes.len() * repeats
                ),
                details: Some(format!(
                    "| injection | clean twins | injected | problems |\n|---|---|---|---|\n{}\n\n\
                     Requests a parser refuses, whose header names count as clean: {}.\n",
                    lines.join("\n"),
                    exchange::tally(&refused)
                )),
                failures,
                ..Outcome::default()
            }
        },
    )
}

/// Header names of `answer`, lower case, with how often each appears.
fn name_counts(answer: &Answer) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for name in answer.names() {
        *counts.entry(name.to_ascii_lowercase()).or_default() += 1;
    }
    counts
}

/// What is wrong with the answer to an injected request, given the answers whose header names
/// it must match exactly if it has their status, and the header names (with their most
/// frequent count) of every clean answer.
fn problems_with(
    answer: &Answer,
    twins: &[&Answer],
    allowed: &BTreeMap<String, usize>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let names = name_counts(answer);
    for forbidden in FORBIDDEN {
        if names.contains_key(forbidden) {
            problems.push(format!("answered with a `{forbidden}` header"));
        }
    }
    for line in &answer.lines {
        if line.contains(&b'\r') || line.contains(&b'\n') {
            problems.push(format!(
                "a header line with a bare CR or LF: {:?}",
                String::from_utf8_lossy(line)
            ));
        }
    }
    let same_status: Vec<BTreeMap<String, usize>> = twins
        .iter()
        .filter(|twin| twin.status == answer.status)
        .map(|twin| name_counts(twin))
        .collect();
    if !same_status.is_empty() {
        if !same_status.contains(&names) {
            problems.push(format!(
                "header names {:?}, a clean twin's are {}",
                names.keys().collect::<Vec<_>>(),
                same_status
                    .iter()
                    .map(|expected| format!("{:?}", expected.keys().collect::<Vec<_>>()))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ));
        }
    } else {
        for (name, count) in &names {
            if allowed.get(name).is_none_or(|most| count > most) {
                problems.push(format!(
                    "a `{name}` header ×{count}, which no clean answer has that often"
                ));
            }
        }
    }
    if let After::More(bytes) = &answer.after {
        problems.push(format!(
            "bytes after the answer: {:?}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(40)])
        ));
    }
    problems
}
