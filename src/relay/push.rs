//! `POST /pump_push/{id}`: one JPEG in, published to every viewer of the device.
//!
//! The body is read straight into place in the part that viewers will send (see
//! `mjpeg::Part`), sized from `Content-Length`, so a push costs one allocation and no copy.
//! Sizes are checked before anything is read: a body declared over `--max-frame-bytes` is
//! refused with 413 without a byte of it being read (the connection layer then closes the
//! connection, since the rest of the body is still on its way), and the body's bytes are
//! charged to the memory budget before its buffer is allocated (503 when no room can be made;
//! see `registry`). Without that, a few hundred connections that send only headers declaring
//! 4 MiB each would make the relay commit gigabytes before a single body byte arrived. The
//! charge then travels with the frame (see `memory`). A body must walk as one whole JPEG
//! (`jpeg::walk`), or it gets 415.
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
use crate::relay::memory::Charge;
use crate::relay::mjpeg::Part;
use crate::relay::registry::Registry;

/// A push's body.
pub trait Upload: Read {
    /// The `Content-Length` its sender declared, if any (a chunked body has none).
    fn declared_length(&self) -> Option<u64>;
    /// A frame of a streaming push arrived: the rest of the body gets another
    /// `--push-timeout`.
    fn frame_arrived(&mut self);
}

/// What bounds one push besides the memory budget.
pub struct Limits {
    pub max_frame_bytes: usize,
}

/// Receives one JPEG and publishes it; returns the device it went to.
pub fn receive(
    body: &mut dyn Upload,
    registry: &Registry,
    device: &DeviceId,
    limits: &Limits,
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
    // A body of unknown length is read into a buffer of its own before its part is made.
    let needed = declared.map_or(limits.max_frame_bytes, |d| Part::size_for(d as usize));
    let charge = registry.reserve(device, needed)?;
    // A body that is cut off, empty or too large counts against the device, as a bad frame.
    let part = read_body(
        body,
        declared,
        limits.max_frame_bytes,
        too_large,
        charge,
        |length| registry.reserve(device, Part::size_for(length)),
    )
    .inspect_err(|refusal| {
        if refusal.reason != Reason::MemoryBudget {
            registry.count_bad_frame(device);
        }
    })?;
    let jpeg = part.jpeg();
    let dimensions = jpeg::walk(jpeg).map_err(|problem| {
        registry.count_bad_frame(device);
        log::debug!(
            "{device}: refused a push of {} bytes: {problem}",
            jpeg.len()
        );
        Refusal::new(Reason::NotJpeg, problem.to_string())
    })?;
    let length = jpeg.len();
    let (seq, published_to) = registry
        .publish(device, part, Some(dimensions), (pusher, PushMode::Single))
        .inspect_err(|refusal| log::warn!("{device}: push refused: {}", refusal.message))?;
    log::trace!("{device}: frame {seq}, {length} bytes");
    Ok(published_to)
}

/// Reads the body into a part. `charge` pays for the part of a declared body, or for the
/// buffer of one of unknown length, whose part is then charged through `charge_part`.
fn read_body(
    body: &mut dyn Upload,
    declared: Option<u64>,
    max_frame_bytes: usize,
    too_large: impl Fn(String) -> Refusal,
    charge: Charge,
    charge_part: impl FnOnce(usize) -> Result<Charge, Refusal>,
) -> Result<Part, Refusal> {
    let empty = || {
        Refusal::new(
            Reason::BadRequest,
            "empty body: send one JPEG as the request body",
        )
    };
    match declared {
        Some(declared) => read_declared(body, declared as usize, charge),
        // Chunked, or no body at all: read up to one byte past the limit to tell "at the
        // limit" from "over it". The rest of an oversized body is left unread.
        None => {
            let limit = max_frame_bytes + 1;
            let bytes = read_up_to(body, limit)
                .map_err(|(read, error)| interrupted(read as u64, None, &error))?;
            if bytes.is_empty() {
                Err(empty())
            } else if bytes.len() > max_frame_bytes {
                Err(too_large(format!("more than {max_frame_bytes}")))
            } else {
                Ok(Part::from_jpeg(&bytes, Some(charge_part(bytes.len())?)))
            }
        }
    }
}

/// Reads at most `limit` bytes into a buffer that never grows past `limit` (`read_to_end`
/// doubles its buffer, which could take twice what the push was charged). On an error, how
/// much had arrived.
fn read_up_to(body: &mut dyn Upload, limit: usize) -> Result<Vec<u8>, (usize, io::Error)> {
    const FIRST_BYTES: usize = 64 * 1024;
    let mut bytes = Vec::new();
    let mut piece = [0u8; 8 * 1024];
    loop {
        let room = limit - bytes.len();
        if room == 0 {
            return Ok(bytes);
        }
        let wanted = room.min(piece.len());
        match body.read(&mut piece[..wanted]) {
            Ok(0) => return Ok(bytes),
            Ok(count) => {
                if bytes.capacity() - bytes.len() < count {
                    // Doubling, as Vec does, but never past `limit`.
                    let grown = (bytes.len() * 2).max(FIRST_BYTES).min(limit);
                    bytes.reserve_exact(grown.max(bytes.len() + count) - bytes.len());
                }
                bytes.extend_from_slice(&piece[..count]);
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err((bytes.len(), error)),
        }
    }
}

/// Reads exactly `declared` bytes straight into the part viewers will share.
fn read_declared(body: &mut dyn Upload, declared: usize, charge: Charge) -> Result<Part, Refusal> {
    Part::with_jpeg(declared, Some(charge), |buffer| {
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
        let limits = Limits {
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
        let mut noise = vec![0x5A; 1000];
        noise[..2].copy_from_slice(&jpeg::SOI);
        noise[998..].copy_from_slice(&jpeg::EOI);
        assert_eq!(status(&noise, Some(1000), 1 << 20), 415);
    }

    #[test]
    fn a_push_is_charged_until_its_frame_is_replaced_and_no_one_holds_it() {
        let (result, registry) = push(TINY_JPEG, Some(TINY_JPEG.len() as u64), 1 << 20);
        assert!(result.is_ok());
        let usage = registry.memory().snapshot().usage;
        assert_eq!(usage.frames, Part::size_for(TINY_JPEG.len()));
        assert_eq!((usage.uploads, usage.in_flight), (0, 0));
        let id = DeviceId::parse("cam").unwrap();
        let held = registry.latest(&id).unwrap();
        let limits = Limits {
            max_frame_bytes: 1 << 20,
        };
        let mut again = MemoryUpload::new(TINY_JPEG, None);
        receive(&mut again, &registry, &id, &limits, None).unwrap();
        let usage = registry.memory().snapshot().usage;
        assert_eq!(usage.in_flight, Part::size_for(TINY_JPEG.len()));
        drop(held);
        let usage = registry.memory().snapshot().usage;
        assert_eq!(
            (usage.frames, usage.in_flight, usage.uploads),
            (usage.total(), 0, 0)
        );
    }
}
