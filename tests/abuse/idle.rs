//! Attacks 1 and 2: connections that occupy the relay without ever completing a request.
//!
//! Slowloris sends a request head one byte at a time and never finishes it; the silent ones
//! send a whole request line and then nothing. Neither costs the attacker anything but a
//! socket, and on a thread-per-connection server each costs a thread and two descriptors.
//! `--request-timeout` is meant to close both; with it the relay must have dropped every
//! such connection by the end of the hold, which lasts several timeouts.
//!
//! Over HTTPS slowloris trickles its head through a finished handshake, one TLS record per
//! byte. The silent connections there are of five kinds in turn, because the handshake is
//! where a TLS port can be held without ever reaching HTTP: a finished handshake then the
//! request line and silence (the plain attack's own), a TCP connection that never sends a
//! ClientHello, a whole ClientHello and then nothing (a handshake that never finishes), a
//! ClientHello trickled a byte at a time like slowloris, and plain HTTP instead of a
//! ClientHello (garbage, which the relay must close at once). The handshake runs within
//! `--request-timeout`, so every one of them must be gone by the end of the hold too.

use std::time::Duration;

use crate::held::Held;
use crate::http;
use crate::load::Shape;
use crate::port::{self, Port};
use crate::scale::{relay_has_timeouts, Scale};
use crate::trial::{self, Outcome, Row, Subject};

/// What a silent connection sends before going silent.
const SILENT_LINE: &[u8] = b"GET /live.mjpeg?device_id=cam_0 HTTP/1.1\r\n";
/// Plain HTTP sent to the HTTPS port instead of a ClientHello.
const NOT_TLS: &[u8] = b"GET /live.mjpeg?device_id=cam_0 HTTP/1.1\r\nHost: t\r\n\r\n";

/// Consecutive connect failures after which an attack stops opening more.
const GIVE_UP_AFTER: usize = 20;

/// The endless request head a slowloris connection trickles out.
fn slowloris_byte(position: usize) -> u8 {
    const HEAD: &[u8] = b"GET /live.mjpeg?device_id=cam_0 HTTP/1.1\r\nHost: t\r\n";
    const FILLER: &[u8] = b"X-Keep: a\r\n";
    match HEAD.get(position) {
        Some(byte) => *byte,
        None => FILLER[(position - HEAD.len()) % FILLER.len()],
    }
}

pub fn slowloris(scale: &Scale, port: Port) -> Row {
    let what = format!(
        "{} connections each send a request head one byte every {} ms, never finishing; \
         held up to {} s",
        scale.slowloris,
        scale.slowloris_every.as_millis(),
        scale.slowloris_hold.as_secs()
    );
    let hold = scale.slowloris_hold;
    // Over HTTPS a newcomer at the full cap is closed in its handshake rather than answered
    // 503 (which counts as opened on the plain port), until the held connections have waited
    // long enough to make room: the attacker goes on trying rather than give up.
    let give_up_after = match port {
        Port::Plain => GIVE_UP_AFTER,
        Port::Https => scale.slowloris,
    };
    hold_idle(1, "slowloris", what, scale, port, hold, |scale, relay| {
        let mut held = Held::open(
            relay,
            scale.slowloris,
            http::CONNECT_TIMEOUT,
            give_up_after,
            |_| vec![slowloris_byte(0)],
        );
        // The first byte went out with the connection.
        held.hold(
            scale.slowloris_hold,
            Some((scale.slowloris_every, &|sent| slowloris_byte(sent + 1))),
        );
        held
    })
}

pub fn silent_request_lines(scale: &Scale, port: Port) -> Row {
    if port == Port::Https {
        return unfinished_handshakes(scale);
    }
    let what = format!(
        "{} connections send `GET /live.mjpeg?device_id=cam_0 HTTP/1.1\\r\\n` and go silent; \
         held up to {} s",
        scale.silent,
        scale.silent_hold.as_secs()
    );
    let hold = scale.silent_hold;
    hold_idle(
        2,
        "silent request lines",
        what,
        scale,
        port,
        hold,
        |scale, relay| {
            let mut held = Held::open(
                relay,
                scale.silent,
                http::CONNECT_TIMEOUT,
                GIVE_UP_AFTER,
                |_| SILENT_LINE.to_vec(),
            );
            held.hold(scale.silent_hold, None);
            held
        },
    )
}

/// Attack 2 over HTTPS: the five kinds of silent connection in the module docs, a fifth each.
fn unfinished_handshakes(scale: &Scale) -> Row {
    let what = format!(
        "{} connections to the HTTPS port, a fifth each: handshake then \
         `GET /live.mjpeg?device_id=cam_0 HTTP/1.1\\r\\n` and silence; no ClientHello at all; \
         a ClientHello and then nothing; a ClientHello trickled a byte every {} ms; plain HTTP \
         instead of a ClientHello; held up to {} s",
        scale.silent,
        scale.slowloris_every.as_millis(),
        scale.silent_hold.as_secs()
    );
    let hold = scale.silent_hold;
    hold_idle(
        2,
        "silent connections and unfinished handshakes",
        what,
        scale,
        Port::Https,
        hold,
        |scale, relay| {
            let hello = port::client_hello();
            let lines = scale.silent / 5;
            let mut held = Held::open(relay, lines, http::CONNECT_TIMEOUT, GIVE_UP_AFTER, |_| {
                SILENT_LINE.to_vec()
            });
            // The other kinds, in turn, on raw TCP to the HTTPS port.
            let kind = |index: usize| index % 4;
            let raw = Held::open(
                &port::raw(relay),
                scale.silent - lines,
                http::CONNECT_TIMEOUT,
                GIVE_UP_AFTER,
                |index| match kind(index) {
                    0 => Vec::new(),
                    1 => hello.clone(),
                    2 => hello[..1].to_vec(),
                    _ => NOT_TLS.to_vec(),
                },
            )
            .counting_only_closes();
            held.extend(raw);
            // The first byte of a trickled ClientHello went out with the connection.
            let trickle = |index: usize, sent: usize| {
                let raw_index = index.checked_sub(lines)?;
                (kind(raw_index) == 2)
                    .then(|| hello.get(sent + 1).copied())
                    .flatten()
            };
            held.hold_dripping(scale.silent_hold, Some((scale.slowloris_every, &trickle)));
            held
        },
    )
}

fn hold_idle(
    number: u8,
    title: &str,
    what: String,
    scale: &Scale,
    port: Port,
    hold: Duration,
    attack: impl FnOnce(&Scale, &http::Target) -> Held,
) -> Row {
    let relay = trial::start_relay_for(scale, port);
    let subject = Subject::on(&relay, port);
    trial::run(
        number,
        &port.title(title),
        what,
        &subject,
        Shape::NORMAL,
        scale,
        |context| {
            let held = attack(context.scale, context.target());
            let mut failures = Vec::new();
            if relay_has_timeouts() && held.still_open() > 0 {
                failures.push(format!(
                    "{} of {} connections still open after {} s, with --request-timeout {} s",
                    held.still_open(),
                    held.opened(),
                    hold.as_secs(),
                    scale.request_timeout.as_secs()
                ));
            }
            Outcome {
                notes: held.summary(),
                failures,
                ..Outcome::default()
            }
        },
    )
}
