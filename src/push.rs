//! `POST /pump_push/{id}`: one JPEG in, published to every viewer of the device.
//!
//! The body is read straight into place in the part that viewers will send (see
//! `mjpeg::Part`), sized from `Content-Length`, so a push costs one allocation and no copy.
//! Sizes are checked before anything is read: a body declared over `--max-frame-bytes` is
//! refused with 413 without being buffered. (tiny_http then discards the unread rest itself; `oversize_alloc` keeps that from
//! hurting when the declared size is absurd.)

use std::io::{self, Read};

use tiny_http::{Header, Request};

use crate::config::Config;
use crate::connection_watch::InProgress;
use crate::device::PushMode;
use crate::device_id::DeviceId;
use crate::jpeg;
use crate::metrics::{Counters, Rejection};
use crate::mjpeg::Part;
use crate::push_stream;
use crate::registry::Registry;
use crate::responses::{self, TextResponse};
use crate::upload_budget::{Reservation, UploadBudget};

/// Receives one push and answers it; a refusal is counted before the answer goes out, so a
/// client that reads `/metrics` after its answer sees it.
// Each argument is a different part of the shared state the push touches; a struct holding
// them for this one call would only rename them.
#[allow(clippy::too_many_arguments)]
pub fn serve(
    mut request: Request,
    registry: &Registry,
    counters: &Counters,
    uploads: &UploadBudget,
    device: &DeviceId,
    config: &Config,
    in_progress: Option<&mut InProgress>,
    extra_headers: &[Header],
) {
    let (max_frame_bytes, push_timeout) = (config.max_frame_bytes, config.push_timeout);
    let pusher = request.remote_addr().copied();
    let limits = Limits {
        uploads,
        max_frame_bytes,
    };
    let received = if push_stream::is_stream(&request) {
        push_stream::receive(
            &mut request,
            registry,
            device,
            &limits,
            pusher,
            push_timeout,
            in_progress,
        )
    } else {
        receive(&mut request, registry, device, &limits, pusher)
    };
    let response = match received {
        Ok(()) => responses::text(200, "OK"),
        Err(Refused { response, why }) => {
            counters.reject(why);
            response
        }
    };
    let status = response.status_code().0;
    // `respond` returns only after tiny_http has discarded any unread rest of the body.
    match request.respond(responses::with_headers(response, extra_headers)) {
        Ok(()) if status != 200 => log::debug!("{device}: push refused with {status}"),
        Ok(()) => {}
        Err(error) => log::debug!("{device}: push answer not delivered: {error}"),
    }
}

/// A refused push: the answer, and why, for the metrics.
pub struct Refused {
    pub response: TextResponse,
    pub why: Rejection,
}

impl From<TextResponse> for Refused {
    /// Answers whose status says why (400, 413, 415).
    fn from(response: TextResponse) -> Refused {
        let why = Rejection::for_status(response.status_code().0);
        Refused { response, why }
    }
}

/// What bounds one push.
pub struct Limits<'a> {
    pub uploads: &'a UploadBudget,
    pub max_frame_bytes: usize,
}

fn receive(
    request: &mut Request,
    registry: &Registry,
    device: &DeviceId,
    limits: &Limits<'_>,
    pusher: Option<std::net::SocketAddr>,
) -> Result<(), Refused> {
    // Held until the frame is published: see `upload_budget`.
    let _reservation = reserve(request, limits)?;
    // A body that is cut off, empty or too large counts against the device, as a bad frame.
    let part = read_body(request, limits.max_frame_bytes).map_err(|refused| {
        registry.count_bad_frame(device);
        Refused::from(refused)
    })?;
    let jpeg = part.jpeg();
    if let Err(problem) = jpeg::check_complete(jpeg) {
        registry.count_bad_frame(device);
        log::debug!(
            "{device}: refused a push of {} bytes: {problem}",
            jpeg.len()
        );
        return Err(responses::reason(415, &problem.to_string()).into());
    }
    let dimensions = jpeg::dimensions(jpeg);
    let length = jpeg.len();
    match registry.publish(device, part, dimensions, (pusher, PushMode::Single)) {
        Ok((seq, _)) => {
            log::trace!("{device}: frame {seq}, {length} bytes");
            Ok(())
        }
        Err(refused) => {
            log::warn!("{device}: push refused: {refused}");
            Err(Refused {
                response: responses::unavailable(&refused.to_string()),
                why: Rejection::DeviceLimit,
            })
        }
    }
}

/// Reserves room for the body before any of it is read (the frame cap is checked first, so
/// an oversized body gets its 413 rather than a 503).
fn reserve<'a>(request: &Request, limits: &Limits<'a>) -> Result<Reservation<'a>, Refused> {
    match request.body_length() {
        Some(declared) if declared > limits.max_frame_bytes => Ok(limits.uploads.nothing()),
        Some(declared) => reserve_bytes(limits, declared),
        None => reserve_bytes(limits, limits.max_frame_bytes),
    }
}

/// Reserves `needed` bytes of the upload budget, or answers 503.
pub fn reserve_bytes<'a>(limits: &Limits<'a>, needed: usize) -> Result<Reservation<'a>, Refused> {
    limits.uploads.reserve(needed).ok_or_else(|| Refused {
        response: responses::unavailable(&format!(
            "too many uploads in progress ({} bytes, see --max-upload-bytes); try again later",
            limits.uploads.limit()
        )),
        why: Rejection::UploadLimit,
    })
}

fn read_body(request: &mut Request, max_frame_bytes: usize) -> Result<Part, TextResponse> {
    let too_large = |size: String| {
        responses::reason(
            413,
            &format!("frame of {size} bytes is over the limit of {max_frame_bytes} bytes (--max-frame-bytes)"),
        )
    };
    let empty = || responses::reason(400, "empty body: send one JPEG as the request body");
    match request.body_length() {
        Some(0) => Err(empty()),
        Some(declared) if declared > max_frame_bytes => Err(too_large(declared.to_string())),
        Some(declared) => read_declared(request.as_reader(), declared),
        // Chunked (or no length at all, which reads as empty): read up to one byte past the
        // limit to tell "at the limit" from "over it".
        None => {
            let mut body = Vec::new();
            let limit = max_frame_bytes as u64 + 1;
            request
                .as_reader()
                .take(limit)
                .read_to_end(&mut body)
                .map_err(|error| interrupted(body.len(), None, &error))?;
            if body.is_empty() {
                Err(empty())
            } else if body.len() > max_frame_bytes {
                drop(body);
                discard_rest(request.as_reader(), max_frame_bytes as u64);
                Err(too_large(format!("more than {max_frame_bytes}")))
            } else {
                Ok(Part::from_jpeg(&body))
            }
        }
    }
}

/// Reads and drops up to `limit` more bytes of a refused chunked body, in small pieces, so a
/// client that sends a little too much can keep its connection: tiny_http does not discard an
/// unread chunked body, and would read what is left as the next request. A body longer still
/// is left to that (tiny_http then answers 400 and closes the connection).
fn discard_rest(reader: &mut dyn Read, limit: u64) {
    let _ = io::copy(&mut reader.take(limit), &mut io::sink());
}

/// Reads exactly `declared` bytes straight into the part viewers will share.
fn read_declared(reader: &mut dyn Read, declared: usize) -> Result<Part, TextResponse> {
    Part::with_jpeg(declared, |buffer| {
        let mut filled = 0;
        while filled < declared {
            match reader.read(&mut buffer[filled..]) {
                Ok(0) => {
                    let error = io::Error::from(io::ErrorKind::UnexpectedEof);
                    return Err(interrupted(filled, Some(declared), &error));
                }
                Ok(count) => filled += count,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(interrupted(filled, Some(declared), &error)),
            }
        }
        Ok(())
    })
}

fn interrupted(received: usize, declared: Option<usize>, error: &io::Error) -> TextResponse {
    let expected = declared.map_or_else(String::new, |d| format!(" of {d}"));
    responses::reason(
        400,
        &format!("body ended after {received}{expected} bytes: {error}"),
    )
}
