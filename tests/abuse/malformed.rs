//! Attack 6: requests no well-behaved client sends, each answered with a status or a close.
//!
//! These probe the relay's request parsing (garbage, HTTP/2, bare LF, huge and countless
//! headers, a missing or doubled `Host`, unknown methods) and its URL decoding
//! (percent-encoded path tricks in device ids). The answer to each is recorded, and where
//! HTTP/1.1 says what it must be, it must be that every time: a head that does not parse
//! (TLS or binary noise) or a request target with bytes beyond ASCII is answered 400, an
//! HTTP/1.1 request without exactly one `Host` too; a head over the relay's 8 KiB buffer or
//! with more than 64 header lines 431; a request line of a version other than HTTP/1.0 and
//! 1.1 (`HTTP/2.0`, the HTTP/2 connection preface) 505, and such a line must cost nothing
//! once answered; device ids made only of dots (`.`, `..`, `%2e%2e`) 400, as a push and as a
//! stream. Beyond the answers, the trial checks afterwards that no trick created a device
//! with a name it should not have and that nothing at all is left behind.
//!
//! Requests go out together, each case `malformed_repeats` times, as many cases at once as
//! keep the connections under [`exchange::AT_ONCE`] (the relay's connection cap must not be
//! what answers them), and the answers of each group are collected against one deadline
//! (`--request-timeout` plus a margin), so a case that is never answered costs that wait once
//! per group, not once per connection.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::exchange;
use crate::frames::Frame;
use crate::http::{self, Target};
use crate::load::{Shape, FRAME_BYTES};
use crate::probe;
use crate::scale::Scale;
use crate::trial::{self, Outcome, Row, Subject};

/// How long past `--request-timeout` the relay has to answer or close every malformed
/// request: a request it cannot parse may legitimately wait for that timeout, so `closed`
/// in the report can mean either at once or by the timeout, and `no answer` means neither.
const ANSWER_MARGIN: Duration = Duration::from_secs(3);

/// A malformed request: a label for the report and the bytes sent.
struct Case {
    label: String,
    bytes: Vec<u8>,
    expect: Expect,
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
    }
}

/// A case the relay should refuse (any 2xx answer is worth a finding).
fn refused(label: &str, bytes: impl Into<Vec<u8>>) -> Case {
    Case {
        expect: Expect::Refusal,
        ..case(label, bytes)
    }
}

/// A case the relay must answer with `status`, every time.
fn must(status: u16, label: &str, bytes: impl Into<Vec<u8>>) -> Case {
    Case {
        expect: Expect::Status(status),
        ..case(label, bytes)
    }
}

/// A case the relay must answer 400, every time.
fn bad_request(label: &str, bytes: impl Into<Vec<u8>>) -> Case {
    must(400, label, bytes)
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
        bad_request("TLS ClientHello bytes", tls_hello),
        bad_request("4 KB of binary noise", noise),
        bad_request(
            "non-ASCII URL (UTF-8 `caméra`)",
            format!("GET /live.mjpeg?device_id=caméra HTTP/1.1\r\n{close}"),
        ),
        bad_request(
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
        must(505, "`GET / HTTP/2.0`", "GET / HTTP/2.0\r\nHost: t\r\n\r\n"),
        must(
            505,
            "HTTP/2 preface `PRI * HTTP/2.0`",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        ),
        must(431, "1 MB header line", big_header),
        must(431, "10,000 headers", many_headers),
        bad_request(
            "HTTP/1.1 without `Host`",
            "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n",
        ),
        bad_request(
            "two `Host` headers",
            format!("GET /healthz HTTP/1.1\r\nHost: a\r\n{close}"),
        ),
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
    let what = format!(
        "{} kinds of malformed request (garbage, non-ASCII URL, bare LF, HTTP/2, 1 MB header \
         line, 10,000 headers, missing or doubled Host, unknown method, percent-encoded \
         device-id tricks, ids made only of dots), each sent {} times at once; answers below",
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
            // Whole cases at a time, up to AT_ONCE connections: under the connection cap.
            let group = (exchange::AT_ONCE / scale.malformed_repeats).max(1);
            let sent: Vec<Sent> = cases
                .chunks(group)
                .flat_map(|group| send_all(target, group, scale, answer_within))
                .collect();
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
            Outcome {
                notes: "answers in the table below".to_string(),
                details: Some(details),
                failures,
                findings,
                starves_pushers: false,
            }
        },
    )
}

/// What the relay answered to the copies of one case.
struct Sent {
    /// Answers by kind: a status code, `closed`, `no answer`, a connect failure.
    answers: BTreeMap<String, usize>,
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
        for _ in 0..scale.malformed_repeats {
            sent.push((index, send(target, &case.bytes)));
        }
    }
    let deadline = Instant::now() + within;
    let mut results: Vec<Sent> = (0..cases.len())
        .map(|_| Sent {
            answers: BTreeMap::new(),
        })
        .collect();
    for (index, stream) in sent {
        let answer = match stream {
            Ok(stream) => probe::answer_by(stream, deadline),
            Err(failure) => failure,
        };
        *results[index].answers.entry(answer).or_default() += 1;
    }
    results
}

/// Connects and sends; a relay that closes while the bytes go out has answered `closed`.
fn send(target: &Target, bytes: &[u8]) -> Result<TcpStream, String> {
    let mut stream = http::connect_tcp(target)
        .map_err(|error| format!("connect {}", http::failure_kind(&error)))?;
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
