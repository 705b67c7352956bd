//! One viewer's MJPEG stream, from the response head until the viewer goes away.
//!
//! Runs on its own handler thread and owns the connection's writer (tiny_http's
//! `Request::into_writer`), so the response is raw and never chunked. The viewer gets the
//! current frame at once, then every new frame as it is published; with nothing new for a
//! second it gets the latest frame again, or the no-signal picture when the phone is gone. The
//! only way to learn that a viewer left is a failed write: the idle repeat makes one happen
//! within about a second of a viewer closing its connection, and the socket's write timeout
//! (`--write-timeout`) ends a viewer that keeps the connection but stops reading.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use tiny_http::{Header, Request};

use crate::assets;
use crate::device::Next;
use crate::device_id::DeviceId;
use crate::metrics::{Counters, Rejection};
use crate::mjpeg::{self, PartWriter};
use crate::registry::{Refused, Registry};
use crate::responses;
use crate::routes::ViewerOptions;

/// With no new frame for this long, send something anyway (see the module docs).
pub const IDLE_RESEND: Duration = Duration::from_secs(1);

/// Streams until the viewer leaves. A refused viewer is counted before its answer goes out.
pub fn serve(
    request: Request,
    registry: &Registry,
    counters: &Counters,
    device: &DeviceId,
    options: ViewerOptions,
    head_only: bool,
    extra_headers: &[Header],
) {
    let http_10 = request.http_version().0 == 1 && request.http_version().1 == 0;
    let peer = request.remote_addr().copied();
    let extra_lines: String = extra_headers
        .iter()
        .map(|header| format!("{}: {}\r\n", header.field, header.value))
        .collect();
    if head_only {
        let mut out = request.into_writer();
        let head = mjpeg::response_head(http_10, true, &extra_lines);
        if let Err(error) = out.write_all(head.as_bytes()).and_then(|()| out.flush()) {
            log::debug!("{device}: HEAD answer not delivered: {error}");
        }
        return;
    }
    let mut viewer = match registry.watch(device, peer) {
        Ok(viewer) => viewer,
        Err(refused) => {
            log::warn!("{device}: viewer refused: {refused}");
            counters.reject(match refused {
                Refused::TooManyViewers { .. } => Rejection::ViewerLimit,
                Refused::TooManyDevices { .. } | Refused::TooManyWaitingDevices { .. } => {
                    Rejection::DeviceLimit
                }
            });
            let answer = responses::unavailable(&refused.to_string());
            let _ = request.respond(responses::with_headers(answer, extra_headers));
            return;
        }
    };
    let head = mjpeg::response_head(http_10, false, &extra_lines);
    let result = PartWriter::start(request.into_writer(), &head, options.advance_headers).and_then(
        |mut parts| {
            let mut next = viewer.first();
            loop {
                let started = Instant::now();
                match &next {
                    Next::Fresh(frame) | Next::Repeat(frame) => {
                        parts.write_part(&frame.part)?;
                        viewer.sent();
                    }
                    Next::NoSignal => parts.write_part(assets::no_signal_part())?,
                    Next::Gone => return Ok(()),
                }
                let not_before = options.min_interval.map(|interval| started + interval);
                next = viewer.next(IDLE_RESEND, not_before);
            }
        },
    );
    report_end(viewer.device_id(), result);
}

/// A viewer hanging up is the normal way for a stream to end; only other errors are worth
/// more than a debug line.
fn report_end(device: &DeviceId, result: io::Result<()>) {
    let Err(error) = result else { return };
    match error.kind() {
        io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::UnexpectedEof => log::debug!("{device}: viewer hung up: {error}"),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            log::info!("{device}: dropped a viewer that stopped reading (write timed out)")
        }
        _ => log::info!("{device}: viewer dropped: {error}"),
    }
}
