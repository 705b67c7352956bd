//! Attack 6: requests no well-behaved client sends, each answered with a status or a close.
//!
//! These probe the parser the relay gets from tiny_http (garbage, HTTP/2, bare LF, huge and
//! countless headers, unknown methods) and the relay's own URL decoding (percent-encoded
//! path tricks in device ids). The answer to each is recorded; device ids made only of dots
//! (`.`, `..`, `%2e%2e`) must be answered 400, as a push and as a stream. Beyond the answers,
//! the trial checks afterwards that no trick created a device with a name it should not have
//! and that nothing is left behind, with one known exception: tiny_http deadlocks the
//! connection thread of a request line whose version is above HTTP/1.1, and each such
//! connection keeps one thread and two descriptors for the life of the process (the relay
//! counts them and exits for a restart past 64, as its README says). Those are sent exactly
//! [`HTTP2_REPEATS`] times per kind at either scale, far below that restart, and the recovery
//! check allows exactly one thread and two descriptors for each of them, no more.
//!
//! Every request goes out at once, each case `malformed_repeats` times, and the answers are
//! collected against one deadline (`--request-timeout` plus a margin), so a case that is never
//! answered costs that wait once, not once per connection.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::frames::Frame;
use crate::http::{self, Target};
use crate::load::{Shape, FRAME_BYTES};
use crate::probe;
use crate::resources::Leftover;
use crate::scale::Scale;
use crate::trial::{self, Outcome, Row, Subject};

/// How long past `--request-timeout` the relay has to answer or close every malformed
/// request: a request it cannot parse may legitimately wait for that timeout, so `closed`
/// in the report can mean either at once or by the timeout, and `no answer` means neither.
const ANSWER_MARGIN: Duration = Duration::from_secs(3);
/// How many times each HTTP/2 request line is sent, at either scale: every one of them pins a
/// thread and two descriptors until the relay restarts, which it does past 64.
const HTTP2_REPEATS: usize = 5;

/// A malformed request: a label for the report and the bytes sent.
struct Case {
    label: String,
    bytes: Vec<u8>,
    expect: Expect,
    /// A request line above HTTP/1.1, which strands its connection in tiny_http for good.
    http2: bool,
}

/// What the relay must answer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Anything: the answer is recorded.
    Anything,
    /// Not a success: a 2xx answer means the relay accepted what it should have refused, a
    /// finding.
    Refusal,
    /// Exactly this status, every time; anything else fails the test.
    Status(u16),
}

fn case(label: &str, bytes: impl Into<Vec<u8>>) -> Case {
    Case {
        label: label.to_string(),
        bytes: bytes.into(),
        expect: Expect::Anything,
        http2: false,
    }
}

/// A case the relay should refuse (any 2xx answer is worth a finding).
fn refused(label: &str, bytes: impl Into<Vec<u8>>) -> Case {
    Case {
        expect: Expect::Refusal,
        ..case(label, bytes)
    }
}

/// A case the relay must answer 400, every time.
fn bad_request(label: &str, bytes: impl Into<Vec<u8>>) -> Case {
    Case {
        expect: Expect::Status(400),
        ..case(label, bytes)
    }
}

/// A request line above HTTP/1.1.
fn http2(label: &str, bytes: impl Into<Vec<u8>>) -> Case {
    Case {
        http2: true,
        ..case(label, bytes)
    }
}

impl Case {
    fn repeats(&self, scale: &Scale) -> usize {
        if self.http2 {
            HTTP2_REPEATS
        } else {
            scale.malformed_repeats
        }
    }
}

/// A push of a valid JPEG to `path`.
fn push_to(path: &str) -> Vec<u8> {
    let frame = Frame::new(FRAME_BYTES, 0);
    let mut bytes = format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        frame.bytes().len()
    )
    .into_bytes();
    bytes.extend_from_slice(frame.bytes());
    bytes
}

fn cases() -> Vec<Case> {
    let close = "Host: t\r\nConnection: close\r\n\r\n";
    let mut tls_hello = vec![0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03];
    tls_hello.extend((0..200u32).map(|i| (i.wrapping_mul(151) % 256) as u8));
    let mut noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(97) % 256) as u8)
        .collect();
    noise.extend_from_slice(b"\r\n\r\n");
    let big_header = format!(
        "GET /healthz HTTP/1.1\r\nX-Big: {}\r\n{close}",
        "a".repeat(1024 * 1024)
    );
    let many_headers = format!(
        "GET /healthz HTTP/1.1\r\n{}{close}",
        (0..10_000)
            .map(|i| format!("X-H{i}: v\r\n"))
            .collect::<String>()
    );
    let mut cases = vec![
        case("TLS ClientHello bytes", tls_hello),
        case("4 KB of binary noise", noise),
        case(
            "non-ASCII URL (UTF-8 `caméra`)",
            format!("GET /live.mjpeg?device_id=caméra HTTP/1.1\r\n{close}"),
        ),
        case(
            "non-ASCII URL (raw bytes FF FE)",
            [
                &b"GET /snapshot.jpg?device_id=\xFF\xFE HTTP/1.1\r\n"[..],
                close.as_bytes(),
            ]
            .concat(),
        ),
        case(
            "LF-only line endings",
            "GET /healthz HTTP/1.1\nHost: t\nConnection: close\n\n",
        ),
        http2("`GET / HTTP/2.0`", "GET / HTTP/2.0\r\nHost: t\r\n\r\n"),
        http2(
            "HTTP/2 preface `PRI * HTTP/2.0`",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        ),
        refused("1 MB header line", big_header),
        refused("10,000 headers", many_headers),
        case(
            "unknown method `BREW /pump_push/cam_0`",
            format!("BREW /pump_push/cam_0 HTTP/1.1\r\nContent-Length: 0\r\n{close}"),
        ),
        case(
            "lower-case method `get /healthz`",
            format!("get /healthz HTTP/1.1\r\n{close}"),
        ),
        case(
            "`GET /snapshot.jpg?device_id=cam_0%00`",
            format!("GET /snapshot.jpg?device_id=cam_0%00 HTTP/1.1\r\n{close}"),
        ),
    ];
    for path in [
        "/pump_push/..%2Fx",
        "/pump_push/%2E%2E%2F%2E%2E%2Fetc",
        "/pump_push/cam%00",
        "/pump_push/%c0%af",
        "/pump_push/cam_0%2F..",
        "/pump_push/%252e%252e",
    ] {
        cases.push(refused(
            &format!("push to `{path}` (valid JPEG)"),
            push_to(path),
        ));
    }
    // Ids made only of dots name no device; `..` in particular must never become one.
    for id in [".", "..", "%2e%2e"] {
        cases.push(bad_request(
            &format!("push to `/pump_push/{id}` (valid JPEG)"),
            push_to(&format!("/pump_push/{id}")),
        ));
        cases.push(bad_request(
            &format!("`GET /live.mjpeg?device_id={id}`"),
            format!("GET /live.mjpeg?device_id={id} HTTP/1.1\r\n{close}"),
        ));
    }
    cases
}

pub fn malformed_requests(scale: &Scale) -> Row {
    let relay = trial::start_relay(scale);
    let subject = Subject::new(relay.pid(), relay.addr);
    let cases = cases();
    let http2_kinds = cases.iter().filter(|case| case.http2).count();
    let what = format!(
        "{} kinds of malformed request (garbage, non-ASCII URL, bare LF, HTTP/2, 1 MB header \
         line, 10,000 headers, unknown method, percent-encoded device-id tricks, ids made only \
         of dots), each sent {} times at once ({http2_kinds} HTTP/2 kinds {HTTP2_REPEATS} \
         times); answers below",
        cases.len(),
        scale.malformed_repeats
    );
    trial::run(
        6,
        "malformed requests",
        what,
        &subject,
        Shape::NORMAL,
        scale,
        |context| {
            let target = context.target();
            let answer_within = scale.request_timeout + ANSWER_MARGIN;
            let sent = send_all(target, &cases, scale, answer_within);
            let answers: Vec<String> = sent.iter().map(|s| s.summary()).collect();
            let mut findings = Vec::new();
            let mut failures = Vec::new();
            let strangers = unexpected_devices(target, &context.device_ids());
            if !strangers.is_empty() {
                findings.push(format!(
                    "percent-encoded tricks created devices: {strangers:?}"
                ));
            }
            for ((case, answer), sent) in cases.iter().zip(&answers).zip(&sent) {
                if let Expect::Status(status) = case.expect {
                    if !sent.all(&status.to_string()) {
                        failures.push(format!(
                            "{}: answered {answer}, expected {status} every time",
                            case.label
                        ));
                    }
                }
                if answer.contains("no answer") {
                    findings.push(format!(
                        "{}: neither answered nor closed within {} s ({answer})",
                        case.label,
                        answer_within.as_secs()
                    ));
                }
                if case.expect == Expect::Refusal && sent.any_success() {
                    findings.push(format!("{}: accepted ({answer})", case.label));
                }
            }
            let mut details = String::from("| malformed request | answers |\n|---|---|\n");
            for (case, answer) in cases.iter().zip(&answers) {
                let must = match case.expect {
                    Expect::Status(status) => format!(" (must be {status})"),
                    Expect::Refusal | Expect::Anything => String::new(),
                };
                details += &format!(
                    "| {}{must} | {} |\n",
                    case.label,
                    answer.replace('|', "\\|")
                );
            }
            if !strangers.is_empty() {
                details += &format!("\nDevices created by the tricks: {strangers:?}\n");
            }
            // Only the lines that reached the relay strand anything.
            let stranded: usize = cases
                .iter()
                .zip(&sent)
                .filter(|(case, _)| case.http2)
                .map(|(_, sent)| sent.delivered)
                .sum();
            let stranded = stranded as u64;
            Outcome {
                notes: "answers in the table below".to_string(),
                details: Some(details),
                failures,
                findings,
                leftover: (stranded > 0).then(|| Leftover {
                    threads: stranded,
                    fds: 2 * stranded,
                    why: format!(
                        "{stranded} HTTP/2 request lines leave {stranded} threads and {} fds, \
                         a known tiny_http hazard",
                        2 * stranded
                    ),
                }),
                starves_pushers: false,
            }
        },
    )
}

/// What the relay answered to the copies of one case.
struct Sent {
    /// Answers by kind: a status code, `closed`, `no answer`, a connect failure.
    answers: BTreeMap<String, usize>,
    /// Copies whose bytes reached the relay.
    delivered: usize,
}

impl Sent {
    /// `400 ×5` or `closed ×3, 400 ×2`.
    fn summary(&self) -> String {
        self.answers
            .iter()
            .map(|(answer, count)| format!("{answer} ×{count}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether every copy was answered `answer`.
    fn all(&self, answer: &str) -> bool {
        !self.answers.is_empty() && self.answers.keys().all(|a| a == answer)
    }

    fn any_success(&self) -> bool {
        self.answers.keys().any(|answer| answer.starts_with('2'))
    }
}

/// Sends every case its number of times on connections of their own, then reads the answers.
fn send_all(target: &Target, cases: &[Case], scale: &Scale, within: Duration) -> Vec<Sent> {
    let mut sent: Vec<(usize, Result<TcpStream, String>)> = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        for _ in 0..case.repeats(scale) {
            sent.push((index, send(target, &case.bytes)));
        }
    }
    let deadline = Instant::now() + within;
    let mut results: Vec<Sent> = (0..cases.len())
        .map(|_| Sent {
            answers: BTreeMap::new(),
            delivered: 0,
        })
        .collect();
    for (index, stream) in sent {
        let answer = match stream {
            Ok(stream) => {
                results[index].delivered += 1;
                probe::answer_by(stream, deadline)
            }
            Err(failure) => failure,
        };
        *results[index].answers.entry(answer).or_default() += 1;
    }
    results
}

/// Connects and sends; a relay that closes while the bytes go out has answered `closed`.
fn send(target: &Target, bytes: &[u8]) -> Result<TcpStream, String> {
    let mut stream =
        http::connect(target).map_err(|error| format!("connect {}", http::failure_kind(&error)))?;
    match stream.write_all(bytes) {
        Ok(()) => Ok(stream),
        // What the relay said before closing may still be readable.
        Err(error) if error.kind() != std::io::ErrorKind::TimedOut => Ok(stream),
        Err(_) => Err("stalled while sending".to_string()),
    }
}

/// Device ids in `/api/devices` other than the normal load's.
fn unexpected_devices(target: &Target, normal: &[String]) -> Vec<String> {
    let Ok((200, body)) = probe::get(target, "/api/devices") else {
        return vec!["(/api/devices did not answer)".to_string()];
    };
    let devices: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    devices
        .as_array()
        .map(|devices| {
            devices
                .iter()
                .filter_map(|device| device["id"].as_str())
                .filter(|id| !normal.iter().any(|n| n == id))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}
