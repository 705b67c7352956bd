//! Synthetic JPEG frames that carry their own send time, so latency is measured end to end.
//!
//! A relay walks a push's marker structure (segments, frame and scan headers, image data up to
//! EOI) without decoding it, so a real encoder is not needed: a frame here is
//!
//! ```text
//! FF D8                                   SOI
//! FF EB 00 1A 'SPLG' device:u32 seq:u64 sent_ns:u64   APP11, all big-endian (the stamp)
//! FF C0 00 0B 08 01E0 0280 01 01 11 00    SOF0, 640×480, one component
//! FF DA 00 08 01 01 00 00 3F 00           SOS header
//! filler without any FF byte              (so nothing in it reads as a marker)
//! FF D9                                   EOI
//! ```
//!
//! padded to exactly the requested size. The stamp sits at a fixed offset near the start, so a
//! viewer can read it from the first bytes of a part and stop copying there. `sent_ns` counts
//! from the run's [`Clock`] epoch, shared by pushers and viewers in this one process, so no
//! clock synchronisation is involved.

use crate::clock::Clock;
use std::time::Instant;

/// Identifies frames made by loadgen (APP11 is unused by common encoders).
pub const MAGIC: [u8; 4] = *b"SPLG";
/// Picture size declared in the SOF0 segment.
pub const WIDTH: u16 = 640;
pub const HEIGHT: u16 = 480;

const SOI: [u8; 2] = [0xFF, 0xD8];
const EOI: [u8; 2] = [0xFF, 0xD9];
/// Where the stamp (magic, device, seq, sent_ns) starts: after SOI, the APP11 marker and its
/// length.
const STAMP_AT: usize = 6;
const STAMP_LEN: usize = 4 + 4 + 8 + 8;
/// The APP11 segment length field counts itself and the payload.
const APP11_LENGTH: u16 = 2 + STAMP_LEN as u16;
const SOS: [u8; 10] = [0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00];

/// Bytes of a frame with no filler: SOI, APP11, SOF0, SOS and EOI.
const SKELETON_BYTES: usize = 2 + 4 + STAMP_LEN + 13 + SOS.len() + 2;
/// The smallest `--frame-bytes` accepted: the skeleton plus a little scan data.
pub const MIN_FRAME_BYTES: usize = 64;
const _: () = assert!(SKELETON_BYTES < MIN_FRAME_BYTES);

/// Who sent a frame and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub device: u32,
    pub seq: u64,
    /// Nanoseconds since the run's clock epoch, taken right before the push was written.
    pub sent_ns: u64,
}

impl Stamp {
    fn encode(&self) -> [u8; STAMP_LEN] {
        let mut bytes = [0u8; STAMP_LEN];
        bytes[..4].copy_from_slice(&MAGIC);
        bytes[4..8].copy_from_slice(&self.device.to_be_bytes());
        bytes[8..16].copy_from_slice(&self.seq.to_be_bytes());
        bytes[16..24].copy_from_slice(&self.sent_ns.to_be_bytes());
        bytes
    }

    /// Reads the stamp from the first bytes of a received frame. `None` for anything loadgen
    /// did not make, such as streampump's no-signal picture.
    pub fn decode(frame_head: &[u8]) -> Option<Stamp> {
        if frame_head.get(..2)? != SOI || frame_head.get(2..6)? != app11_marker_and_length() {
            return None;
        }
        let stamp = frame_head.get(STAMP_AT..STAMP_AT + STAMP_LEN)?;
        if stamp[..4] != MAGIC {
            return None;
        }
        let word = |range: std::ops::Range<usize>| -> Option<u64> {
            let mut bytes = [0u8; 8];
            let field = stamp.get(range)?;
            bytes[8 - field.len()..].copy_from_slice(field);
            Some(u64::from_be_bytes(bytes))
        };
        Some(Stamp {
            device: u32::try_from(word(4..8)?).ok()?,
            seq: word(8..16)?,
            sent_ns: word(16..24)?,
        })
    }
}

fn app11_marker_and_length() -> [u8; 4] {
    let [high, low] = APP11_LENGTH.to_be_bytes();
    [0xFF, 0xEB, high, low]
}

/// One device's reusable frame buffer; each push overwrites only the stamp.
pub struct Frame {
    bytes: Vec<u8>,
    device: u32,
}

impl Frame {
    /// Builds a frame of exactly `size` bytes (at least [`MIN_FRAME_BYTES`]).
    pub fn new(size: usize, device: u32) -> Frame {
        let size = size.max(MIN_FRAME_BYTES);
        let mut bytes = Vec::with_capacity(size);
        bytes.extend_from_slice(&SOI);
        bytes.extend_from_slice(&app11_marker_and_length());
        bytes.extend_from_slice(
            &Stamp {
                device,
                seq: 0,
                sent_ns: 0,
            }
            .encode(),
        );
        bytes.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x0B, 0x08]);
        bytes.extend_from_slice(&HEIGHT.to_be_bytes());
        bytes.extend_from_slice(&WIDTH.to_be_bytes());
        bytes.extend_from_slice(&[0x01, 0x01, 0x11, 0x00]);
        bytes.extend_from_slice(&SOS);
        debug_assert_eq!(bytes.len(), SKELETON_BYTES - EOI.len());
        // A byte pattern that never contains 0xFF (values 0..=254).
        let filler = size - bytes.len() - EOI.len();
        bytes.extend((0..filler).map(|i| (i % 255) as u8));
        bytes.extend_from_slice(&EOI);
        Frame { bytes, device }
    }

    /// Writes sequence number `seq` and send time `sent` into the stamp.
    pub fn stamp(&mut self, clock: &Clock, seq: u64, sent: Instant) {
        let stamp = Stamp {
            device: self.device,
            seq,
            sent_ns: clock.nanos(sent),
        };
        self.bytes[STAMP_AT..STAMP_AT + STAMP_LEN].copy_from_slice(&stamp.encode());
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn frames_have_the_exact_size_and_jpeg_framing() {
        for size in [MIN_FRAME_BYTES, 1000, 61_440] {
            let frame = Frame::new(size, 3);
            let bytes = frame.bytes();
            assert_eq!(bytes.len(), size);
            assert_eq!(bytes[..2], SOI);
            assert_eq!(bytes[size - 2..], EOI);
            let filler = &bytes[SKELETON_BYTES - 2..size - 2];
            assert!(!filler.contains(&0xFF), "filler must not contain markers");
        }
    }

    #[test]
    fn the_sof_segment_declares_640_by_480() {
        let frame = Frame::new(200, 0);
        let sof = &frame.bytes()[STAMP_AT + STAMP_LEN..];
        assert_eq!(sof[..2], [0xFF, 0xC0]);
        assert_eq!(u16::from_be_bytes([sof[5], sof[6]]), HEIGHT);
        assert_eq!(u16::from_be_bytes([sof[7], sof[8]]), WIDTH);
    }

    #[test]
    fn stamps_round_trip_through_the_frame() {
        let clock = Clock::start();
        let mut frame = Frame::new(500, 7);
        let sent = clock.epoch() + Duration::from_nanos(0x0102_0304_0506_0708);
        frame.stamp(&clock, u64::MAX - 1, sent);
        let stamp = Stamp::decode(&frame.bytes()[..40]).unwrap();
        assert_eq!(
            stamp,
            Stamp {
                device: 7,
                seq: u64::MAX - 1,
                sent_ns: 0x0102_0304_0506_0708
            }
        );
        // Big-endian on the wire.
        assert_eq!(
            frame.bytes()[STAMP_AT + 16..STAMP_AT + 24],
            [1, 2, 3, 4, 5, 6, 7, 8]
        );
    }

    #[test]
    fn foreign_or_short_frames_have_no_stamp() {
        let frame = Frame::new(100, 1);
        assert_eq!(Stamp::decode(&frame.bytes()[..20]), None);
        let mut other = frame.bytes().to_vec();
        other[STAMP_AT] = b'X';
        assert_eq!(Stamp::decode(&other), None);
        assert_eq!(Stamp::decode(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10]), None);
        assert_eq!(Stamp::decode(&[]), None);
    }
}
