//! Attack 5: pushes that go wrong, aimed at the devices the normal viewers are watching.
//!
//! A phone that loses Wi-Fi cuts its upload mid-body; a buggy or hostile one declares more
//! than it sends and then waits, holding a handler and a share of `--max-upload-bytes` until
//! `--push-timeout` frees them; a hostile one declares 100 GB, which must be refused with 413
//! and a reason before anything is read. None of these may publish a partial frame: a normal
//! viewer would see a part without EOI and count an error.
//!
//! Over HTTPS each push finishes its handshake first and then goes wrong in the same ways,
//! inside the encryption.

use std::io::{BufReader, Write};
use std::time::Duration;

use crate::frames::Frame;
use crate::held::Held;
use crate::http::{self, Target};
use crate::load::{device_id, Shape, FRAME_BYTES};
use crate::port::Port;
use crate::scale::{relay_has_timeouts, Scale};
use crate::trial::{self, Outcome, Row, Subject};

/// Bytes of the body a cut push sends before hanging up, and a short push before going
/// silent.
const CUT_AFTER: usize = 10_000;
const SHORT_BY: usize = 10_000;
/// The declared length no relay should try to receive.
const ABSURD_LENGTH: u64 = 100_000_000_000;
/// How long past `--push-timeout` a short push is held before the relay counts as never
/// dropping it.
const PUSH_TIMEOUT_MARGIN: Duration = Duration::from_secs(5);

pub fn broken_pushes(scale: &Scale, port: Port) -> Row {
    let relay = trial::start_relay_for(scale, port);
    let subject = Subject::on(&relay, port);
    let what = format!(
        "{} pushes hang up after {CUT_AFTER} of {FRAME_BYTES} bytes; {} send {SHORT_BY} bytes \
         less than declared and wait (up to --push-timeout + {} s); {} declare \
         `Content-Length: {ABSURD_LENGTH}`",
        scale.cut_pushes,
        scale.short_pushes,
        PUSH_TIMEOUT_MARGIN.as_secs(),
        scale.absurd_pushes
    );
    trial::run(
        5,
        &port.title("broken pushes"),
        what,
        &subject,
        Shape::NORMAL,
        scale,
        |context| {
            let target = context.target();
            let devices = context.load.shape.devices;
            let device = |i: usize| i as u32 % devices;
            let mut failures = Vec::new();

            let mut cut_failures = 0;
            for i in 0..scale.cut_pushes {
                if cut_push(target, device(i)).is_err() {
                    cut_failures += 1;
                }
            }

            let mut absurd_answers = Vec::new();
            for i in 0..scale.absurd_pushes {
                let (status, message) = absurd_push(target, device(i));
                if status != Some(413) || message.is_empty() {
                    failures.push(format!(
                        "Content-Length {ABSURD_LENGTH} answered {status:?} {message:?}, \
                         expected 413 with a reason"
                    ));
                }
                absurd_answers.push(match status {
                    Some(status) => format!("{status} {message:?}"),
                    None => message,
                });
            }
            absurd_answers.dedup();

            let mut short = Held::open(
                target,
                scale.short_pushes,
                http::CONNECT_TIMEOUT,
                scale.short_pushes,
                |i| {
                    let frame = Frame::new(FRAME_BYTES, device(i));
                    let mut bytes =
                        http::push_request_head(target, &device_id(device(i)), FRAME_BYTES);
                    bytes.extend_from_slice(&frame.bytes()[..FRAME_BYTES - SHORT_BY]);
                    bytes
                },
            );
            short.hold(scale.push_timeout + PUSH_TIMEOUT_MARGIN, None);
            if relay_has_timeouts() && short.still_open() > 0 {
                failures.push(format!(
                    "{} of {} short pushes still open {} s after --push-timeout {} s",
                    short.still_open(),
                    short.opened(),
                    PUSH_TIMEOUT_MARGIN.as_secs(),
                    scale.push_timeout.as_secs()
                ));
            }
            Outcome {
                notes: format!(
                    "cut pushes sent: {} (failed to send: {cut_failures}); short pushes: {}; \
                     100 GB pushes answered: {}",
                    scale.cut_pushes,
                    short.summary(),
                    absurd_answers.join(" / ")
                ),
                failures,
                ..Outcome::default()
            }
        },
    )
}

/// Sends the head and part of the body, then hangs up.
fn cut_push(target: &Target, device: u32) -> std::io::Result<()> {
    let frame = Frame::new(FRAME_BYTES, device);
    let mut stream = http::connect(target)?;
    stream.write_all(&http::push_request_head(
        target,
        &device_id(device),
        FRAME_BYTES,
    ))?;
    stream.write_all(&frame.bytes()[..CUT_AFTER])?;
    stream.flush()
}

/// Declares a 100 GB body and reads the answer: its status (`None` if there was none) and
/// its reason, or what went wrong.
fn absurd_push(target: &Target, device: u32) -> (Option<u16>, String) {
    let attempt = || -> std::io::Result<(u16, String)> {
        let mut stream = http::connect(target)?;
        write!(
            stream,
            "POST /pump_push/{} HTTP/1.1\r\nHost: {}\r\nContent-Type: image/jpeg\r\n\
             Content-Length: {ABSURD_LENGTH}\r\n\r\n",
            device_id(device),
            target.authority
        )?;
        let mut reader = BufReader::new(stream);
        let mut head = http::read_response_head(&mut reader)?;
        let body = http::read_short_body(&mut reader, &mut head)?;
        Ok((
            head.status,
            String::from_utf8_lossy(&body).trim().to_string(),
        ))
    };
    match attempt() {
        Ok((status, message)) => (Some(status), message),
        Err(error) => (None, format!("no answer: {error}")),
    }
}
