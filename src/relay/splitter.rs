//! Finds whole JPEGs in a byte stream, as they arrive: the frames of a streaming push.
//!
//! One splitter serves both kinds of streaming body. A bare concatenation of JPEGs is
//! SOI … EOI, SOI … EOI. A multipart body (`ffmpeg -f mpjpeg`, ESP32 firmware) wraps each
//! JPEG in a boundary line and part headers, which are ASCII text and so never contain the
//! byte 0xFF: skipping everything outside SOI … EOI reads either, with or without a
//! Content-Length in the parts, whatever the boundary is.
//!
//! Where a frame ends is decided by walking the JPEG's structure, not by searching for the
//! bytes FF D9:
//! - before the scan, every marker segment carries its length and is skipped whole, so the
//!   EOI of a thumbnail inside an APP1 (EXIF) segment is never taken for the frame's end;
//! - in entropy-coded data the encoder stuffs every 0xFF data byte as FF 00, and FF D0–D7 are
//!   restart markers, so there the first FF D9 is the real end of the image. Other markers
//!   between scans (DHT, a progressive JPEG's next SOS) are segments again.
//!
//! The splitter keeps its position between calls, so each byte is looked at once however the
//! body is cut into reads. A frame that grows past the cap is dropped whole (the rest of it is
//! skipped, not stored) and reported, and the stream goes on with the next frame.

/// What the splitter found in the bytes given to it.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// A whole frame, SOI to EOI.
    Frame(Vec<u8>),
    /// A frame that went over the cap; its bytes were dropped.
    Oversized,
    /// Bytes that began as a JPEG but broke its structure (an end before any image data, a
    /// marker missing where one must be); dropped.
    Broken,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Outside a frame, looking for FF D8.
    Seeking { after_ff: bool },
    /// Inside a frame, before or between scans: expecting a marker.
    Marker,
    /// Read FF, expecting the marker code (further FFs are fill bytes).
    MarkerCode,
    /// Reading the two length bytes of a segment; `first` holds the high byte once read.
    Length { first: Option<u8>, scan: bool },
    /// Skipping a segment's payload; `scan` says whether entropy-coded data follows (SOS).
    Payload { left: usize, scan: bool },
    /// In entropy-coded data; `after_ff` when the last byte was 0xFF.
    Scan { after_ff: bool },
}

/// An incremental frame splitter; see the module docs.
#[derive(Debug)]
pub struct JpegSplitter {
    max_frame_bytes: usize,
    state: State,
    frame: Vec<u8>,
    /// The current frame went over the cap: follow its structure without storing it.
    oversized: bool,
    /// The current frame has reached its image data (SOS).
    scanned: bool,
}

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;

impl JpegSplitter {
    pub fn new(max_frame_bytes: usize) -> JpegSplitter {
        JpegSplitter {
            max_frame_bytes,
            state: State::Seeking { after_ff: false },
            frame: Vec::new(),
            oversized: false,
            scanned: false,
        }
    }

    /// Whether a frame has begun and not yet ended: what a stream cut now would lose.
    pub fn in_frame(&self) -> bool {
        !matches!(self.state, State::Seeking { .. })
    }

    /// Feeds the next bytes of the stream; calls `found` for every frame that ends in them.
    pub fn feed(&mut self, bytes: &[u8], mut found: impl FnMut(Found)) {
        for &byte in bytes {
            if let Some(done) = self.step(byte) {
                found(done);
            }
        }
    }

    fn begin_frame(&mut self) {
        self.oversized = false;
        self.scanned = false;
        self.frame.clear();
        self.keep(0xFF);
        self.keep(SOI);
        self.state = State::Marker;
    }

    /// Drops the frame in progress as broken and looks for the next one.
    fn broken(&mut self) -> Option<Found> {
        self.state = State::Seeking { after_ff: false };
        self.frame = Vec::new();
        Some(Found::Broken)
    }

    fn keep(&mut self, byte: u8) {
        if self.oversized {
            return;
        }
        if self.frame.len() >= self.max_frame_bytes {
            self.oversized = true;
            self.frame = Vec::new();
            return;
        }
        self.frame.push(byte);
    }

    fn step(&mut self, byte: u8) -> Option<Found> {
        match self.state {
            State::Seeking { after_ff } => {
                match (after_ff, byte) {
                    (true, SOI) => self.begin_frame(),
                    (_, 0xFF) => self.state = State::Seeking { after_ff: true },
                    _ => self.state = State::Seeking { after_ff: false },
                }
                None
            }
            State::Marker => {
                self.keep(byte);
                // Anything but a marker here breaks the frame.
                if byte != 0xFF {
                    return self.broken();
                }
                self.state = State::MarkerCode;
                None
            }
            State::MarkerCode => {
                self.keep(byte);
                match byte {
                    0xFF => {}
                    // An image ends after its data; an end before any is a broken frame.
                    EOI if self.scanned => return self.finish(),
                    EOI => return self.broken(),
                    // A new SOI inside a frame: the previous one was cut; begin again.
                    SOI => self.begin_frame(),
                    // Markers without a length: TEM and restart markers.
                    0x01 | 0xD0..=0xD7 => self.state = State::Marker,
                    code => {
                        self.state = State::Length {
                            first: None,
                            scan: code == SOS,
                        }
                    }
                }
                None
            }
            State::Length { first: None, scan } => {
                self.keep(byte);
                self.state = State::Length {
                    first: Some(byte),
                    scan,
                };
                None
            }
            State::Length {
                first: Some(high),
                scan,
            } => {
                self.keep(byte);
                let length = usize::from(u16::from_be_bytes([high, byte]));
                self.state = match length.checked_sub(2) {
                    // A length below 2 cannot be: the frame is broken.
                    None => return self.broken(),
                    Some(0) if scan => {
                        self.scanned = true;
                        State::Scan { after_ff: false }
                    }
                    Some(0) => State::Marker,
                    Some(left) => State::Payload { left, scan },
                };
                None
            }
            State::Payload { left, scan } => {
                self.keep(byte);
                self.state = match (left - 1, scan) {
                    (0, true) => {
                        self.scanned = true;
                        State::Scan { after_ff: false }
                    }
                    (0, false) => State::Marker,
                    (left, scan) => State::Payload { left, scan },
                };
                None
            }
            State::Scan { after_ff: false } => {
                self.keep(byte);
                self.state = State::Scan {
                    after_ff: byte == 0xFF,
                };
                None
            }
            State::Scan { after_ff: true } => {
                self.keep(byte);
                match byte {
                    // Stuffed data byte, restart marker, or fill: still in the scan.
                    0x00 | 0xD0..=0xD7 => self.state = State::Scan { after_ff: false },
                    0xFF => self.state = State::Scan { after_ff: true },
                    EOI => return self.finish(),
                    SOI => self.begin_frame(),
                    // A marker between scans (DHT, SOS of a progressive JPEG…): a segment.
                    code => {
                        self.state = State::Length {
                            first: None,
                            scan: code == SOS,
                        }
                    }
                }
                None
            }
        }
    }

    fn finish(&mut self) -> Option<Found> {
        self.state = State::Seeking { after_ff: false };
        if std::mem::take(&mut self.oversized) {
            return Some(Found::Oversized);
        }
        Some(Found::Frame(std::mem::take(&mut self.frame)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small baseline JPEG with `scan` as its entropy-coded data and optional extra segments
    /// (given whole, marker included) before SOF.
    fn jpeg(extra: &[u8], scan: &[u8]) -> Vec<u8> {
        let mut out = vec![0xFF, 0xD8];
        out.extend_from_slice(extra);
        out.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x10, 0x00, 0x10]);
        out.extend_from_slice(&[0x01, 0x01, 0x11, 0x00]);
        out.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00]);
        out.extend_from_slice(scan);
        out.extend_from_slice(&[0xFF, 0xD9]);
        out
    }

    fn split(stream: &[u8], max: usize, read_size: usize) -> Vec<Found> {
        let mut splitter = JpegSplitter::new(max);
        let mut found = Vec::new();
        for piece in stream.chunks(read_size) {
            splitter.feed(piece, |f| found.push(f));
        }
        found
    }

    #[test]
    fn finds_concatenated_frames_however_the_stream_is_cut() {
        let a = jpeg(&[], &[1, 2, 3]);
        let b = jpeg(&[], &[4, 5, 6, 7]);
        let stream = [a.clone(), b.clone(), a.clone()].concat();
        for read_size in [1, 2, 3, 7, 64, 4096] {
            assert_eq!(
                split(&stream, 1 << 20, read_size),
                [
                    Found::Frame(a.clone()),
                    Found::Frame(b.clone()),
                    Found::Frame(a.clone())
                ],
                "reads of {read_size}"
            );
        }
    }

    #[test]
    fn an_eoi_inside_a_thumbnail_or_stuffed_data_does_not_end_the_frame() {
        // An APP1 segment holding a whole thumbnail JPEG, FF D9 included.
        let thumbnail = jpeg(&[], &[9, 9]);
        let mut app1 = vec![0xFF, 0xE1];
        app1.extend_from_slice(&((thumbnail.len() + 2) as u16).to_be_bytes());
        app1.extend_from_slice(&thumbnail);
        // Entropy-coded data with stuffed 0xFF bytes and restart markers.
        let scan = [
            0x12, 0xFF, 0x00, 0xD9, 0xFF, 0xD0, 0x34, 0xFF, 0xFF, 0x00, 0x56,
        ];
        let frame = jpeg(&app1, &scan);
        assert_eq!(split(&frame, 1 << 20, 5), [Found::Frame(frame.clone())]);
    }

    #[test]
    fn multipart_framing_around_the_frames_is_skipped() {
        let a = jpeg(&[], &[1]);
        let b = jpeg(&[], &[2, 2]);
        let mut body =
            b"--ffmpeg\r\ncontent-type: image/jpeg\r\ncontent-length: 30\r\n\r\n".to_vec();
        body.extend_from_slice(&a);
        body.extend_from_slice(b"\r\n--ffmpeg\r\nContent-Type: image/jpeg\r\n\r\n");
        body.extend_from_slice(&b);
        body.extend_from_slice(b"\r\n--ffmpeg--\r\n");
        assert_eq!(
            split(&body, 1 << 20, 13),
            [Found::Frame(a), Found::Frame(b)]
        );
    }

    #[test]
    fn progressive_scans_and_tables_between_them_are_followed() {
        let mut frame = jpeg(&[], &[1, 2]);
        frame.truncate(frame.len() - 2);
        // DHT, then a second scan, then EOI.
        frame.extend_from_slice(&[0xFF, 0xC4, 0x00, 0x04, 0xAA, 0xBB]);
        frame.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00]);
        frame.extend_from_slice(&[7, 0xFF, 0x00, 8, 0xFF, 0xD9]);
        assert_eq!(split(&frame, 1 << 20, 3), [Found::Frame(frame.clone())]);
    }

    #[test]
    fn an_oversized_frame_is_dropped_and_the_next_one_kept() {
        let big = jpeg(&[], &[0x11; 500]);
        let small = jpeg(&[], &[0x22; 10]);
        let stream = [big, small.clone()].concat();
        assert_eq!(
            split(&stream, 100, 17),
            [Found::Oversized, Found::Frame(small)]
        );
    }

    #[test]
    fn a_cut_frame_is_lost_and_the_stream_goes_on() {
        let a = jpeg(&[], &[1, 2, 3, 4]);
        let b = jpeg(&[], &[5, 6]);
        // Half of `a`, then a whole `b` (a new SOI restarts the frame).
        let stream = [&a[..a.len() / 2], &b[..]].concat();
        assert_eq!(split(&stream, 1 << 20, 4), [Found::Frame(b.clone())]);
        let mut splitter = JpegSplitter::new(1 << 20);
        splitter.feed(&a[..10], |_| panic!("no frame yet"));
        assert!(splitter.in_frame());
    }

    #[test]
    fn a_frame_that_ends_before_its_image_data_is_broken() {
        let good = jpeg(&[], &[1]);
        let no_scan = [0xFF, 0xD8, 0xFF, 0xFE, 0x00, 0x04, 0x41, 0x42, 0xFF, 0xD9];
        let no_marker = [0xFF, 0xD8, 0x12, 0x34];
        let stream = [&no_scan[..], &good, &no_marker, &good].concat();
        assert_eq!(
            split(&stream, 1 << 20, 3),
            [
                Found::Broken,
                Found::Frame(good.clone()),
                Found::Broken,
                Found::Frame(good)
            ]
        );
    }

    #[test]
    fn garbage_yields_nothing_and_a_start_in_garbage_is_broken() {
        // Every byte value but 0xFF, in a scrambled order: no marker can appear.
        let mut state = 12345u32;
        let garbage: Vec<u8> = (0..5000)
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                match (state >> 16) as u8 {
                    0xFF => 0x7F,
                    byte => byte,
                }
            })
            .collect();
        assert!(garbage.contains(&0xD8) && garbage.iter().any(|&b| b > 0xF0));
        assert_eq!(split(&garbage, 1 << 20, 31), []);
        // A start of image followed by anything but a marker is broken, and the stream goes
        // on to the next real frame.
        let good = jpeg(&[], &[3]);
        let stream = [&[0xFF, 0xD8][..], &garbage, &good].concat();
        assert_eq!(
            split(&stream, 1 << 20, 64),
            [Found::Broken, Found::Frame(good)]
        );
    }
}
