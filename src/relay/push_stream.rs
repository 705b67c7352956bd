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
//! moves the body's deadline (`Upload::frame_arrived`), so a live stream runs for as long as
//! it delivers, and a stalled, trickling or garbage one is cut off as any slow body is. Each
//! stream holds one frame's worth of the memory budget for its life: what a frame in
//! progress can pin. Every frame found is copied into a part of its own, charged on its own;
//! a frame that finds no room is skipped like a bad one (without counting as bad), and the
//! stream goes on.

use std::io;

use crate::refusal::{Reason, Refusal};
use crate::relay::device::{ConnectedStream, Peer, PushMode};
use crate::relay::device_id::DeviceId;
use crate::relay::jpeg;
use crate::relay::mjpeg::Part;
use crate::relay::push::{self, Limits, Upload};
use crate::relay::registry::Registry;
use crate::relay::splitter::{Found, JpegSplitter};

/// Bytes read from the body at a time.
const READ_BYTES: usize = 16 * 1024;

/// Whether a push's body is a stream of frames (see the module docs), from its
/// `Content-Type` and whether it is chunked.
pub fn is_stream(content_type: Option<&str>, chunked: bool) -> bool {
    let media_type = content_type.map(|value| {
        value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    });
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
    last_problem: Option<Refusal>,
}

/// Reads the whole stream, publishing every good frame. `Ok` once at least one frame was
/// published; otherwise the reason none was.
pub fn receive(
    body: &mut dyn Upload,
    registry: &Registry,
    device: &DeviceId,
    limits: &Limits,
    pusher: Peer,
) -> Result<(), Refusal> {
    // One frame's worth of the memory budget, held for the stream's life: the frame being
    // received is what a stream can pin. (A declared length over the frame cap is normal for
    // a finite stream of many frames, so it is not refused here.)
    let needed = body
        .declared_length()
        .map_or(limits.max_frame_bytes, |declared| {
            declared.min(limits.max_frame_bytes as u64) as usize
        });
    let _reservation = registry.reserve(device, needed)?;
    let mut splitter = JpegSplitter::new(limits.max_frame_bytes);
    let mut buffer = vec![0; READ_BYTES];
    let mut tally = Tally::default();
    let mut connected: Option<ConnectedStream> = None;
    let mut received = 0u64;
    let ended = loop {
        let count = match body.read(&mut buffer) {
            Ok(0) => break Ok(()),
            Ok(count) => count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => break Err(error),
        };
        received += count as u64;
        let mut finished = Vec::new();
        splitter.feed(&buffer[..count], |found| finished.push(found));
        for found in finished {
            let published = take(found, registry, device, &pusher, &mut tally, &mut connected)?;
            // Each published frame earns the next one another --push-timeout; bad ones do
            // not, so a stream of garbage is cut off like any stalled body.
            if published {
                body.frame_arrived();
            }
        }
    };
    let cut_mid_frame = splitter.in_frame();
    if cut_mid_frame {
        registry.count_bad_frame(device);
        tally.bad += 1;
    }
    let who = pusher
        .addr
        .map_or_else(|| "a pusher".to_string(), |peer| peer.to_string());
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
        return Err(push::interrupted(received, None, &error));
    }
    Err(tally.last_problem.unwrap_or_else(|| {
        let (reason, message) = match (received, cut_mid_frame) {
            (0, _) => (
                Reason::BadRequest,
                "empty body: send one JPEG, or a stream of them".to_string(),
            ),
            (_, true) => (
                Reason::BadRequest,
                format!("body ended inside a frame after {received} bytes"),
            ),
            (_, false) => (
                Reason::NotJpeg,
                format!("no JPEG found in {received} bytes"),
            ),
        };
        Refusal::new(reason, message)
    }))
}

/// Publishes a finished frame (`Ok(true)`), or counts it as bad (`Ok(false)`). Only a refusal
/// of the device itself (the device limit) ends the stream.
fn take(
    found: Found,
    registry: &Registry,
    device: &DeviceId,
    pusher: &Peer,
    tally: &mut Tally,
    connected: &mut Option<ConnectedStream>,
) -> Result<bool, Refusal> {
    let (reason, message) = match found {
        Found::Oversized => (
            Reason::TooLarge,
            "a frame went over the limit (--max-frame-bytes) and was skipped".to_string(),
        ),
        Found::Broken => (
            Reason::NotJpeg,
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
            return Err(Refusal::new(
                Reason::Gone,
                "device deleted; reconnect to push again",
            ));
        }
        Found::Frame(bytes) => match jpeg::walk(&bytes) {
            Err(problem) => (Reason::NotJpeg, format!("a frame was skipped: {problem}")),
            Ok(dimensions) => {
                let charge = match registry.reserve(device, Part::size_for(bytes.len())) {
                    Ok(charge) => charge,
                    Err(refusal) => {
                        log::debug!("{device}: a streamed frame was skipped: {refusal}");
                        tally.last_problem = Some(refusal);
                        return Ok(false);
                    }
                };
                let dimensions = Some(dimensions);
                let part = Part::from_jpeg(&bytes, Some(charge));
                let from = (pusher.addr, PushMode::Stream);
                return match registry.publish(device, part, dimensions, from) {
                    Ok((seq, published_to)) => {
                        tally.published += 1;
                        // The device may have been forgotten and made anew since the last
                        // frame: the stream belongs to the one it publishes to now.
                        if !connected.as_ref().is_some_and(|c| c.is_for(&published_to)) {
                            *connected = Some(published_to.stream_connected(pusher.clone()));
                        }
                        log::trace!("{device}: streamed frame {seq}, {} bytes", bytes.len());
                        Ok(true)
                    }
                    Err(refusal) => {
                        log::warn!("{device}: stream refused: {}", refusal.message);
                        Err(refusal)
                    }
                };
            }
        },
    };
    registry.count_bad_frame(device);
    tally.bad += 1;
    log::debug!("{device}: {message}");
    tally.last_problem = Some(Refusal::new(reason, message));
    Ok(false)
}
