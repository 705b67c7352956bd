//! Streaming pushes: many JPEGs in one long `POST /pump_push/{id}`, each published the moment
//! its last byte arrives.
//!
//! This is what `ffmpeg -f mpjpeg -method POST` sends (chunked, boundary `ffmpeg`, lower-case
//! part headers, sometimes no Content-Length), what ESP32-CAM firmware sends, and what
//! `curl -T -` of a file of concatenated JPEGs sends. A body is taken as a stream when its
//! Content-Type is `multipart/x-mixed-replace`, `multipart/mixed` or `video/x-motion-jpeg`,
//! or when it is chunked and says `application/octet-stream`, `image/jpeg` or nothing at all.
//! Frames are found by their JPEG structure (`jpeg_splitter`), so the multipart boundary and
//! part headers need not be parsed: one JPEG in a chunked body works exactly like before.
//!
//! Each frame is checked and capped like a single push. A bad frame is counted on the device
//! and skipped; the stream goes on. The device stays online while the stream is connected.
//! When two pushers stream to one id, both publish and the newest frame wins, exactly as with
//! single pushes; the status names the pusher of the latest frame.
//!
//! `--push-timeout` applies to each good frame, not to the whole body: every published frame
//! moves the connection's deadline (`connection_watch`), so a live stream runs for as long as
//! it delivers, and a stalled, trickling or garbage one is cut off as any slow body is. Each
//! stream holds one frame's worth of the upload budget for its life: what a frame in
//! progress can pin.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tiny_http::Request;

use crate::connection_watch::InProgress;
use crate::device::{ConnectedStream, PushMode};
use crate::device_id::DeviceId;
use crate::jpeg;
use crate::jpeg_splitter::{Found, JpegSplitter};
use crate::metrics::Rejection;
use crate::mjpeg::Part;
use crate::push::{self, Limits, Refused};
use crate::registry::Registry;
use crate::request_headers;
use crate::responses;

/// Bytes read from the body at a time.
const READ_BYTES: usize = 16 * 1024;

/// Whether a push's body is a stream of frames (see the module docs).
pub fn is_stream(request: &Request) -> bool {
    let media_type = request_headers::value(request, "Content-Type").map(|value| {
        value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    });
    let chunked = request.body_length().is_none()
        && request_headers::value(request, "Transfer-Encoding").is_some();
    match media_type.as_deref() {
        Some("multipart/x-mixed-replace")
        | Some("multipart/mixed")
        | Some("video/x-motion-jpeg") => true,
        // With a length these are one JPEG, pushed the usual way (a phone photo with data
        // after its EOI, such as a gain map, stays one frame).
        Some("application/octet-stream") | Some("image/jpeg") | Some("") | None => chunked,
        Some(_) => false,
    }
}

/// What one stream has done so far.
#[derive(Default)]
struct Tally {
    published: u64,
    bad: u64,
    /// The answer to give if no frame at all was published.
    last_problem: Option<Refused>,
}

/// Reads the whole stream, publishing every good frame. `Ok` once at least one frame was
/// published; otherwise the reason none was.
pub fn receive(
    request: &mut Request,
    registry: &Registry,
    device: &DeviceId,
    limits: &Limits<'_>,
    pusher: Option<SocketAddr>,
    push_timeout: Duration,
    mut in_progress: Option<&mut InProgress>,
) -> Result<(), Refused> {
    // One frame's worth of the upload budget, held for the stream's life: the frame being
    // received is what a stream can pin. (A declared length over the frame cap is normal for
    // a finite stream of many frames, so it is not refused here.)
    let needed = request
        .body_length()
        .map_or(limits.max_frame_bytes, |declared| {
            declared.min(limits.max_frame_bytes)
        });
    let _reservation = push::reserve_bytes(limits, needed)?;
    let mut splitter = JpegSplitter::new(limits.max_frame_bytes);
    let mut buffer = vec![0; READ_BYTES];
    let mut tally = Tally::default();
    let mut connected: Option<ConnectedStream> = None;
    let mut received = 0usize;
    let reader = request.as_reader();
    let ended = loop {
        let count = match reader.read(&mut buffer) {
            Ok(0) => break Ok(()),
            Ok(count) => count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => break Err(error),
        };
        received += count;
        let mut finished = Vec::new();
        splitter.feed(&buffer[..count], |found| finished.push(found));
        for found in finished {
            let published = take(found, registry, device, pusher, &mut tally, &mut connected)?;
            // Each published frame earns the next one another --push-timeout; bad ones do
            // not, so a stream of garbage is cut off like any stalled body.
            if published {
                if let Some(watch) = in_progress.as_deref_mut() {
                    watch.extend_deadline(Instant::now() + push_timeout);
                }
            }
        }
    };
    let cut_mid_frame = splitter.in_frame();
    if cut_mid_frame {
        registry.count_bad_frame(device);
        tally.bad += 1;
    }
    let who = pusher.map_or_else(|| "a pusher".to_string(), |peer| peer.to_string());
    if connected.is_some() {
        log::info!(
            "{device}: stream from {who} ended after {} frames ({} bad){}",
            tally.published,
            tally.bad,
            ended
                .as_ref()
                .err()
                .map_or_else(String::new, |error| format!(": {error}"))
        );
    }
    if tally.published > 0 {
        return Ok(());
    }
    if let Err(error) = ended {
        return Err(Refused::from(responses::reason(
            400,
            &format!("body ended after {received} bytes: {error}"),
        )));
    }
    Err(tally.last_problem.unwrap_or_else(|| {
        let (status, message) = match (received, cut_mid_frame) {
            (0, _) => (
                400,
                "empty body: send one JPEG, or a stream of them".to_string(),
            ),
            (_, true) => (
                400,
                format!("body ended inside a frame after {received} bytes"),
            ),
            (_, false) => (415, format!("no JPEG found in {received} bytes")),
        };
        Refused::from(responses::reason(status, &message))
    }))
}

/// Publishes a finished frame (`Ok(true)`), or counts it as bad (`Ok(false)`). Only a refusal
/// of the device itself (the device limit) ends the stream.
fn take(
    found: Found,
    registry: &Registry,
    device: &DeviceId,
    pusher: Option<SocketAddr>,
    tally: &mut Tally,
    connected: &mut Option<ConnectedStream>,
) -> Result<bool, Refused> {
    let (status, message) = match found {
        Found::Oversized => (
            413,
            "a frame went over the limit (--max-frame-bytes) and was skipped".to_string(),
        ),
        Found::Broken => (
            415,
            "a frame was skipped: it broke the JPEG structure (an end before any image data, \
             or a marker missing)"
                .to_string(),
        ),
        Found::Frame(_)
            if connected
                .as_ref()
                .is_some_and(ConnectedStream::device_forgotten) =>
        {
            log::info!("{device}: deleted while streaming; ending the stream");
            return Err(Refused::from(responses::reason(
                410,
                "device deleted; reconnect to push again",
            )));
        }
        Found::Frame(bytes) => match jpeg::check_complete(&bytes) {
            Err(problem) => (415, format!("a frame was skipped: {problem}")),
            Ok(()) => {
                let dimensions = jpeg::dimensions(&bytes);
                let part = Part::from_jpeg(&bytes);
                return match registry.publish(device, part, dimensions, (pusher, PushMode::Stream))
                {
                    Ok((seq, published_to)) => {
                        tally.published += 1;
                        // The device may have been forgotten and made anew since the last
                        // frame: the stream belongs to the one it publishes to now.
                        if !connected.as_ref().is_some_and(|c| c.is_for(&published_to)) {
                            *connected = Some(published_to.stream_connected(pusher));
                        }
                        log::trace!("{device}: streamed frame {seq}, {} bytes", bytes.len());
                        Ok(true)
                    }
                    Err(refused) => {
                        log::warn!("{device}: stream refused: {refused}");
                        Err(Refused {
                            response: responses::unavailable(&refused.to_string()),
                            why: Rejection::DeviceLimit,
                        })
                    }
                };
            }
        },
    };
    registry.count_bad_frame(device);
    tally.bad += 1;
    log::debug!("{device}: {message}");
    tally.last_problem = Some(Refused::from(responses::reason(status, &message)));
    Ok(false)
}
