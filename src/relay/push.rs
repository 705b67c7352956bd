//! `POST /pump_push/{id}`: one JPEG in, published to every viewer of the device.
//!
//! The body is read straight into place in the part that viewers will send (see
//! `mjpeg::Part`), sized from `Content-Length`, so a push costs one allocation and no copy.
//! Sizes are checked before anything is read: a body declared over `--max-frame-bytes` is
//! refused with 413 without a byte of it being read (the connection layer then closes the
//! connection, since the rest of the body is still on its way).
//!
//! This layer sees a body only as an [`Upload`]: bytes, the length its sender declared, and a
//! clock a streaming push can wind. Anything that reads will do, so pushes are tested over
//! in-memory bodies.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::Arc;

use crate::refusal::{Reason, Refusal};
use crate::relay::device::{Device, PushMode};
use crate::relay::device_id::DeviceId;
use crate::relay::jpeg;
use crate::relay::mjpeg::Part;
use crate::relay::registry::Registry;
use crate::relay::upload_budget::{Reservation, UploadBudget};

/// A push's body.
pub trait Upload: Read {
    /// The `Content-Length` its sender declared, if any (a chunked body has none).
    fn declared_length(&self) -> Option<u64>;
    /// A frame of a streaming push arrived: the rest of the body gets another
    /// `--push-timeout`.
    fn frame_arrived(&mut self);
}

/// What bounds one push.
pub struct Limits<'a> {
    pub uploads: &'a UploadBudget,
    pub max_frame_bytes: usize,
}

/// Receives one JPEG and publishes it; returns the device it went to.
pub fn receive(
    body: &mut dyn Upload,
    registry: &Registry,
    device: &DeviceId,
    limits: &Limits<'_>,
    pusher: Option<SocketAddr>,
) -> Result<Arc<Device>, Refusal> {
    let declared = body.declared_length();
    let too_large = |size: String| {
        Refusal::new(
            Reason::TooLarge,
            format!(
                "frame of {size} bytes is over the limit of {} bytes (--max-frame-bytes)",
                limits.max_frame_bytes
            ),
        )
    };
    if let Some(declared) = declared.filter(|&d| d > limits.max_frame_bytes as u64) {
        registry.count_bad_frame(device);
        return Err(too_large(declared.to_string()));
    }
    // Held until the frame is published: see `upload_budget`.
    let _reservation = reserve_bytes(
        limits,
        declared.map_or(limits.max_frame_bytes, |d| d as usize),
    )?;
    // A body that is cut off, empty or too large counts against the device, as a bad frame.
    let part = read_body(body, declared, limits.max_frame_bytes, too_large).inspect_err(|_| {
        registry.count_bad_frame(device);
    })?;
    let jpeg = part.jpeg();
    if let Err(problem) = jpeg::check_complete(jpeg) {
        registry.count_bad_frame(device);
        log::debug!(
            "{device}: refused a push of {} bytes: {problem}",
            jpeg.len()
        );
        return Err(Refusal::new(Reason::NotJpeg, problem.to_string()));
    }
    let dimensions = jpeg::dimensions(jpeg);
    let length = jpeg.len();
    let (seq, published_to) = registry
        .publish(device, part, dimensions, (pusher, PushMode::Single))
        .inspect_err(|refusal| log::warn!("{device}: push refused: {}", refusal.message))?;
    log::trace!("{device}: frame {seq}, {length} bytes");
    Ok(published_to)
}

/// Reserves `needed` bytes of the upload budget, or refuses with 503.
pub fn reserve_bytes<'a>(limits: &Limits<'a>, needed: usize) -> Result<Reservation<'a>, Refusal> {
    limits.uploads.reserve(needed).ok_or_else(|| {
        Refusal::new(
            Reason::UploadLimit,
            format!(
                "too many uploads in progress ({} bytes, see --max-upload-bytes); try again later",
                limits.uploads.limit()
            ),
        )
    })
}

fn read_body(
    body: &mut dyn Upload,
    declared: Option<u64>,
    max_frame_bytes: usize,
    too_large: impl Fn(String) -> Refusal,
) -> Result<Part, Refusal> {
    let empty = || {
        Refusal::new(
            Reason::BadRequest,
            "empty body: send one JPEG as the request body",
        )
    };
    match declared {
        Some(declared) => read_declared(body, declared as usize),
        // Chunked, or no body at all: read up to one byte past the limit to tell "at the
        // limit" from "over it". The rest of an oversized body is left unread.
        None => {
            let mut bytes = Vec::new();
            let limit = max_frame_bytes as u64 + 1;
            body.take(limit)
                .read_to_end(&mut bytes)
                .map_err(|error| interrupted(bytes.len() as u64, None, &error))?;
            if bytes.is_empty() {
                Err(empty())
            } else if bytes.len() > max_frame_bytes {
                Err(too_large(format!("more than {max_frame_bytes}")))
            } else {
                Ok(Part::from_jpeg(&bytes))
            }
        }
    }
}

/// Reads exactly `declared` bytes straight into the part viewers will share.
fn read_declared(body: &mut dyn Upload, declared: usize) -> Result<Part, Refusal> {
    Part::with_jpeg(declared, |buffer| {
        let mut filled = 0;
        while filled < declared {
            match body.read(&mut buffer[filled..]) {
                Ok(0) => {
                    let error = io::Error::from(io::ErrorKind::UnexpectedEof);
                    return Err(interrupted(filled as u64, Some(declared as u64), &error));
                }
                Ok(count) => filled += count,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    return Err(interrupted(filled as u64, Some(declared as u64), &error))
                }
            }
        }
        Ok(())
    })
}

/// A body that stopped before its end: a 408 if it was too slow, a 400 otherwise.
pub fn interrupted(received: u64, declared: Option<u64>, error: &io::Error) -> Refusal {
    let expected = declared.map_or_else(String::new, |d| format!(" of {d}"));
    let reason = match error.kind() {
        io::ErrorKind::TimedOut => Reason::Timeout,
        _ => Reason::BadRequest,
    };
    Refusal::new(
        reason,
        format!("body ended after {received}{expected} bytes: {error}"),
    )
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::config::Config;
    use crate::relay::device_id::DeviceId;
    use std::io::Cursor;

    /// An in-memory body, as the connection layer would hand one over.
    pub struct MemoryUpload {
        pub bytes: Cursor<Vec<u8>>,
        pub declared: Option<u64>,
        pub frames: usize,
    }

    impl MemoryUpload {
        pub fn new(bytes: &[u8], declared: Option<u64>) -> MemoryUpload {
            MemoryUpload {
                bytes: Cursor::new(bytes.to_vec()),
                declared,
                frames: 0,
            }
        }
    }

    impl Read for MemoryUpload {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            self.bytes.read(out)
        }
    }

    impl Upload for MemoryUpload {
        fn declared_length(&self) -> Option<u64> {
            self.declared
        }
        fn frame_arrived(&mut self) {
            self.frames += 1;
        }
    }

    pub const TINY_JPEG: &[u8] = include_bytes!("../../assets/no_signal.jpg");

    fn push(
        bytes: &[u8],
        declared: Option<u64>,
        max: usize,
    ) -> (Result<Arc<Device>, Refusal>, Registry) {
        let registry = Registry::new(&Config::default());
        let uploads = UploadBudget::new(1 << 24);
        let limits = Limits {
            uploads: &uploads,
            max_frame_bytes: max,
        };
        let id = DeviceId::parse("cam").unwrap();
        let result = receive(
            &mut MemoryUpload::new(bytes, declared),
            &registry,
            &id,
            &limits,
            None,
        );
        (result, registry)
    }

    #[test]
    fn a_jpeg_is_published_whatever_its_framing() {
        for declared in [Some(TINY_JPEG.len() as u64), None] {
            let (result, registry) = push(TINY_JPEG, declared, 1 << 20);
            assert!(result.is_ok());
            let id = DeviceId::parse("cam").unwrap();
            assert_eq!(registry.latest(&id).unwrap().part.jpeg(), TINY_JPEG);
        }
    }

    #[test]
    fn refusals_say_why() {
        let status = |bytes: &[u8], declared: Option<u64>, max: usize| {
            push(bytes, declared, max).0.unwrap_err().status()
        };
        assert_eq!(status(TINY_JPEG, Some(1 << 40), 1 << 20), 413);
        assert_eq!(status(TINY_JPEG, None, 100), 413);
        assert_eq!(status(b"", None, 100), 400);
        assert_eq!(
            status(&TINY_JPEG[..10], Some(TINY_JPEG.len() as u64), 1 << 20),
            400
        );
        assert_eq!(status(b"not a jpeg", None, 100), 415);
    }
}
