//! Attacks 1 and 2: connections that occupy the relay without ever completing a request.
//!
//! Slowloris sends a request head one byte at a time and never finishes it; the silent ones
//! send a whole request line and then nothing. Neither costs the attacker anything but a
//! socket, and on a thread-per-connection server each costs a thread and two descriptors.
//! `--request-timeout` is meant to close both; with it the relay must have dropped every
//! such connection by the end of the hold, which lasts several timeouts.

use std::time::Duration;

use crate::held::Held;
use crate::http;
use crate::load::Shape;
use crate::scale::{relay_has_timeouts, Scale};
use crate::trial::{self, Outcome, Row, Subject};

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

pub fn slowloris(scale: &Scale) -> Row {
    let what = format!(
        "{} connections each send a request head one byte every {} ms, never finishing; \
         held up to {} s",
        scale.slowloris,
        scale.slowloris_every.as_millis(),
        scale.slowloris_hold.as_secs()
    );
    let hold = scale.slowloris_hold;
    hold_idle(1, "slowloris", what, scale, hold, |scale, relay| {
        let mut held = Held::open(
            relay,
            scale.slowloris,
            http::CONNECT_TIMEOUT,
            GIVE_UP_AFTER,
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

pub fn silent_request_lines(scale: &Scale) -> Row {
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
        hold,
        |scale, relay| {
            let mut held = Held::open(
                relay,
                scale.silent,
                http::CONNECT_TIMEOUT,
                GIVE_UP_AFTER,
                |_| b"GET /live.mjpeg?device_id=cam_0 HTTP/1.1\r\n".to_vec(),
            );
            held.hold(scale.silent_hold, None);
            held
        },
    )
}

fn hold_idle(
    number: u8,
    title: &str,
    what: String,
    scale: &Scale,
    hold: Duration,
    attack: impl FnOnce(&Scale, &http::Target) -> Held,
) -> Row {
    let relay = trial::start_relay(scale);
    let subject = Subject::new(relay.pid(), relay.addr);
    trial::run(
        number,
        title,
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
