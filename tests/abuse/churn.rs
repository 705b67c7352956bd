//! Attack 4: connections that come and go as fast as the machine allows.
//!
//! Port scanners, health checks and crashing clients connect and close without a request, or
//! after half of one; viewers that close mid-frame are every browser tab that navigates away.
//! Each is cheap for the client and must be cheap for the relay: nothing left behind, no
//! viewer slot kept for a viewer that is gone (otherwise `--max-viewers` fills with ghosts and
//! real viewers get 503).
//!
//! Over HTTPS every cycle is a whole handshake first (then nothing, or half a request), and one
//! cycle in four instead sends a ClientHello on raw TCP and vanishes in the middle of the
//! handshake; the mid-frame viewers leave after decrypting their few hundred bytes.

use std::collections::BTreeMap;
use std::io::{BufReader, Read, Write};
use std::thread;
use std::time::Instant;

use crate::http::{self, Target};
use crate::load::{device_id, Shape};
use crate::port::{self, Port};
use crate::scale::Scale;
use crate::trial::{self, Outcome, Row, Subject};
use crate::THREAD_STACK_BYTES;

/// Client threads running the cycles side by side.
const WORKERS: usize = 4;
/// Bytes of the stream a mid-frame viewer reads before leaving: part of the head and the
/// first bytes of the frame.
const READ_BEFORE_LEAVING: usize = 300;

pub fn connect_and_vanish(scale: &Scale, port: Port) -> Row {
    let relay = trial::start_relay_for(scale, port);
    let subject = Subject::on(&relay, port);
    let cycles = match port {
        Port::Plain => "connect/close cycles (a third send half a request first)",
        Port::Https => {
            "cycles over HTTPS (three in four: handshake, then nothing or half a request, and \
             close; one in four: a ClientHello on raw TCP, and close mid-handshake)"
        }
    };
    let what = format!(
        "{} {cycles}, then {} viewers that leave after {READ_BEFORE_LEAVING} bytes of the \
         stream; {WORKERS} clients at a time",
        scale.churn, scale.mid_frame
    );
    let hello = port::client_hello();
    trial::run(
        4,
        &port.title("connection churn"),
        what,
        &subject,
        Shape::NORMAL,
        scale,
        |context| {
            let target = context.target();
            let devices = context.load.shape.devices;
            let started = Instant::now();
            let cycles = in_workers(scale.churn, |i| match port {
                Port::Https if i % 4 == 3 => connect_and_close_raw(target, &hello),
                _ => connect_and_close(target, i),
            });
            let cycles_took = started.elapsed();
            let started = Instant::now();
            let leavers = in_workers(scale.mid_frame, |i| {
                leave_mid_frame(target, &device_id(i as u32 % devices))
            });
            let leavers_took = started.elapsed();
            let mut findings = Vec::new();
            let served = leavers.get("200").copied().unwrap_or(0);
            if served < scale.mid_frame as u64 {
                findings.push(format!(
                    "{} of {} mid-frame viewers were not served: {}",
                    scale.mid_frame as u64 - served,
                    scale.mid_frame,
                    counts(&leavers)
                ));
            }
            Outcome {
                notes: format!(
                    "cycles took {:.1} s ({}); mid-frame viewers took {:.1} s ({})",
                    cycles_took.as_secs_f64(),
                    counts(&cycles),
                    leavers_took.as_secs_f64(),
                    counts(&leavers)
                ),
                findings,
                ..Outcome::default()
            }
        },
    )
}

/// Runs `job(0..count)` on [`WORKERS`] threads and counts what the calls returned.
fn in_workers(count: usize, job: impl Fn(usize) -> String + Sync) -> BTreeMap<String, u64> {
    let job = &job;
    thread::scope(|scope| {
        let workers: Vec<_> = (0..WORKERS)
            .map(|worker| {
                thread::Builder::new()
                    .name(format!("abuse-churn-{worker}"))
                    .stack_size(THREAD_STACK_BYTES)
                    .spawn_scoped(scope, move || {
                        let mut outcomes = BTreeMap::new();
                        for index in (worker..count).step_by(WORKERS) {
                            *outcomes.entry(job(index)).or_insert(0) += 1;
                        }
                        outcomes
                    })
                    .expect("start a churn thread")
            })
            .collect();
        let mut total = BTreeMap::new();
        for worker in workers {
            for (outcome, count) in worker.join().expect("a churn thread panicked") {
                *total.entry(outcome).or_insert(0) += count;
            }
        }
        total
    })
}

/// `200 ×1990, http 503 ×10`.
fn counts(outcomes: &BTreeMap<String, u64>) -> String {
    outcomes
        .iter()
        .map(|(outcome, count)| format!("{outcome} ×{count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One cycle: connect (and over HTTPS, handshake), maybe send half a request, close.
fn connect_and_close(target: &Target, index: usize) -> String {
    let mut stream = match http::connect(target) {
        Ok(stream) => stream,
        Err(error) => return format!("connect {}", http::failure_kind(&error)),
    };
    let half: &[u8] = match index % 3 {
        0 => b"",
        1 => b"GET /live.mjpeg?device_id=cam_0 HT",
        _ => b"POST /pump_push/cam_0 HTTP/1.1\r\nHost: t\r\nContent-Length: 30000\r\n\r\n\xFF\xD8",
    };
    match stream.write_all(half).and_then(|()| stream.flush()) {
        Ok(()) => "closed".to_string(),
        Err(error) => format!("send {}", http::failure_kind(&error)),
    }
}

/// One cycle on raw TCP to the HTTPS port: a ClientHello, and gone before the handshake
/// finishes.
fn connect_and_close_raw(target: &Target, hello: &[u8]) -> String {
    let mut stream = match http::connect_tcp(target) {
        Ok(stream) => stream,
        Err(error) => return format!("connect {}", http::failure_kind(&error)),
    };
    match stream.write_all(hello) {
        Ok(()) => "closed mid-handshake".to_string(),
        Err(error) => format!("send {}", http::failure_kind(&error)),
    }
}

/// Opens a stream, reads its head and a few hundred bytes, and leaves.
fn leave_mid_frame(target: &Target, device: &str) -> String {
    let attempt = || -> std::io::Result<String> {
        let mut stream = http::connect(target)?;
        stream.write_all(&http::stream_request(target, device))?;
        let mut reader = BufReader::new(stream);
        let head = http::read_response_head(&mut reader)?;
        if head.status == 200 {
            reader.read_exact(&mut [0u8; READ_BEFORE_LEAVING])?;
            Ok("200".to_string())
        } else {
            Ok(format!("http {}", head.status))
        }
    };
    attempt().unwrap_or_else(|error| http::failure_kind(&error).to_string())
}
