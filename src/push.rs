//! `POST /pump_push/{id}`: one JPEG in, published to every viewer of the device.
//!
//! The body is read straight into place in the part that viewers will send (see
//! `mjpeg::Part`), sized from `Content-Length`, so a push costs one allocation and no copy.
//! Sizes are checked before anything is read: a body declared over `--max-frame-bytes` is
//! refused with 413 without being buffered. (tiny_http then discards the unread rest itself; `oversize_alloc` keeps that from
//! hurting when the declared size is absurd.)

use std::io::{self, Read};

use tiny_http::Request;

use crate::device_id::DeviceId;
use crate::jpeg;
use crate::metrics::{Counters, Rejection};
use crate::mjpeg::Part;
use crate::registry::Registry;
use crate::responses::{self, TextResponse};
use crate::upload_budget::{Reservation, UploadBudget};

/// Receives one push and answers it; a refusal is counted before the answer goes out, so a
/// client that reads `/metrics` after its answer sees it.
pub fn serve(
    mut request: Request,
    registry: &Registry,
    counters: &Counters,
    uploads: &UploadBudget,
    device: &DeviceId,
    max_frame_bytes: usize,
) {
    let pusher = request.remote_addr().copied();
    let limits = Limits {
        uploads,
        max_frame_bytes,
    };
    let response = match receive(&mut request, registry, device, &limits, pusher) {
        Ok(()) => responses::text(200, "OK"),
        Err(Refused { response, why }) => {
            if matches!(
                why,
                Rejection::BadRequest | Rejection::TooLarge | Rejection::NotJpeg
            ) {
                registry.count_bad_frame(device);
            }
            counters.reject(why);
            response
        }
    };
    let status = response.status_code().0;
    // `respond` returns only after tiny_http has discarded any unread rest of the body.
    match request.respond(response) {
        Ok(()) if status != 200 => log::debug!("{device}: push refused with {status}"),
        Ok(()) => {}
        Err(error) => log::debug!("{device}: push answer not delivered: {error}"),
    }
}

/// A refused push: the answer, and why, for the metrics.
struct Refused {
    response: TextResponse,
    why: Rejection,
}

impl From<TextResponse> for Refused {
    /// Answers whose status says why (400, 413, 415).
    fn from(response: TextResponse) -> Refused {
        let why = Rejection::for_status(response.status_code().0);
        Refused { response, why }
    }
}

/// What bounds one push.
struct Limits<'a> {
    uploads: &'a UploadBudget,
    max_frame_bytes: usize,
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
    let part = read_body(request, limits.max_frame_bytes)?;
    let jpeg = part.jpeg();
    if let Err(problem) = jpeg::check_complete(jpeg) {
        log::debug!(
            "{device}: refused a push of {} bytes: {problem}",
            jpeg.len()
        );
        return Err(responses::reason(415, &problem.to_string()).into());
    }
    let dimensions = jpeg::dimensions(jpeg);
    let length = jpeg.len();
    match registry.publish(device, part, dimensions, pusher) {
        Ok(seq) => {
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
    let needed = match request.body_length() {
        Some(declared) if declared > limits.max_frame_bytes => return Ok(limits.uploads.nothing()),
        Some(declared) => declared,
        None => limits.max_frame_bytes,
    };
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
