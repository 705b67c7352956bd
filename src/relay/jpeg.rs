//! The little the relay needs to know about JPEG: is a body one whole JPEG, and how big is
//! the picture.
//!
//! A body is walked as a JPEG up to and through its scans, never decoded: every marker where
//! one must be, every segment inside the body by its own length, a frame header (SOF) with a
//! sane picture size before the first scan, scan headers that add up, image data in every
//! scan, and the end of image (`FF D9`) as the last two bytes and nowhere before them. Checking
//! only the first and last two bytes let anything through: 4 MiB of random bytes between
//! `FF D8` and `FF D9` were stored and sent to every viewer, whose decoders then choked on
//! it. A truncated upload (a phone that lost Wi-Fi mid-POST) fails too, and would otherwise
//! show as a grey half-picture. The walk follows the same rules as the stream splitter
//! (`splitter`), so the images of a body this accepts are exactly the frames the splitter
//! finds in it.
//!
//! Width and height come from the frame header and are shown in the status.

/// Start of image, the first two bytes of every JPEG.
pub const SOI: [u8; 2] = [0xFF, 0xD8];
/// End of image, the last two bytes of every complete JPEG.
pub const EOI: [u8; 2] = [0xFF, 0xD9];

/// Largest width or height accepted. Above any phone camera's video (and its 200-megapixel
/// stills, 16320 wide); a bigger picture would cost a viewer's decoder a gigabyte (16384² ×
/// 4 bytes), which is what a made-up header claiming 65535×65535 is for.
pub const MAX_SIDE: u16 = 16384;
const _: () = assert!(MAX_SIDE == 16384, "the refusal's text names the limit");

const SOS: u8 = 0xDA;

/// Why a body is not accepted as a JPEG, worded for the client. `at` is a byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAJpeg {
    MissingStart,
    MissingEnd,
    NoMarker { at: usize },
    BadSegmentLength { at: usize },
    SegmentOverrun { at: usize },
    SecondStart { at: usize },
    BadFrameHeader { at: usize },
    AbsurdSize { width: u16, height: u16 },
    ScanBeforeFrameHeader { at: usize },
    BadScanHeader { at: usize },
    EmptyScan { at: usize },
    NoImageData,
    EndsEarly { at: usize },
}

impl std::fmt::Display for NotAJpeg {
    // One static sentence per problem and the byte it was found at: a format string per
    // problem would cost a router's flash more than the whole walk.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (text, at) = match *self {
            NotAJpeg::MissingStart => (
                "body is not a JPEG: it must start with FF D8 (start of image)",
                None,
            ),
            NotAJpeg::MissingEnd => (
                "body is not a complete JPEG: it must end with FF D9 (end of image); \
                 was the upload cut short?",
                None,
            ),
            NotAJpeg::NoMarker { at } => {
                ("body is not a JPEG: no marker where one must be", Some(at))
            }
            NotAJpeg::BadSegmentLength { at } => {
                ("body is not a JPEG: a segment length below 2", Some(at))
            }
            NotAJpeg::SegmentOverrun { at } => (
                "body is not a complete JPEG: a segment runs past its end",
                Some(at),
            ),
            NotAJpeg::SecondStart { at } => {
                ("body is not one JPEG: a second start of image", Some(at))
            }
            NotAJpeg::BadFrameHeader { at } => {
                ("body is not a JPEG: malformed frame header", Some(at))
            }
            NotAJpeg::AbsurdSize { width, height } => {
                write!(
                    f,
                    "body is not a usable JPEG: its picture is {width}x{height}"
                )?;
                ("; each side must be 1 to 16384 pixels", None)
            }
            NotAJpeg::ScanBeforeFrameHeader { at } => (
                "body is not a JPEG: image data before any frame header",
                Some(at),
            ),
            NotAJpeg::BadScanHeader { at } => {
                ("body is not a JPEG: malformed scan header", Some(at))
            }
            NotAJpeg::EmptyScan { at } => (
                "body is not a complete JPEG: a scan has no image data; was it cut short?",
                Some(at),
            ),
            NotAJpeg::NoImageData => ("body is not a JPEG: it ends before any image data", None),
            NotAJpeg::EndsEarly { at } => (
                "body is not one JPEG: its image ends before the body does",
                Some(at),
            ),
        };
        f.write_str(text)?;
        match at {
            Some(at) => write!(f, " (at byte {at})"),
            None => Ok(()),
        }
    }
}

/// Picture size in pixels, as declared by the frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dimensions {
    pub width: u16,
    pub height: u16,
}

/// Walks `body` as one whole JPEG (see the module docs) and returns its picture size. Images
/// appended after the first one's end, each whole (as a photo carries its gain map or depth
/// map, ISO 21496-1 and CIPA DC-007), are walked too; anything else after the end is refused.
pub fn walk(body: &[u8]) -> Result<Dimensions, NotAJpeg> {
    if body.len() < 4 || body[..2] != SOI {
        return Err(NotAJpeg::MissingStart);
    }
    if body[body.len() - 2..] != EOI {
        return Err(NotAJpeg::MissingEnd);
    }
    let (size, mut end) = walk_image(body, 0)?;
    while end < body.len() {
        if body[end..].starts_with(&SOI) {
            end = walk_image(body, end)?.1;
        } else {
            return Err(NotAJpeg::EndsEarly { at: end - 2 });
        }
    }
    Ok(size)
}

/// Walks the image whose SOI is at `start`: its size, and where it ends (just past its EOI).
fn walk_image(body: &[u8], start: usize) -> Result<(Dimensions, usize), NotAJpeg> {
    let mut size = None;
    let mut scanned = false;
    let mut after_scan = false;
    let mut at = start + 2;
    loop {
        if body.get(at) != Some(&0xFF) {
            return Err(NotAJpeg::NoMarker { at });
        }
        // A marker may be preceded by any number of 0xFF fill bytes (ITU T.81 B.1.1.2).
        let mut code_at = at + 1;
        while body.get(code_at) == Some(&0xFF) {
            code_at += 1;
        }
        let code = *body.get(code_at).ok_or(NotAJpeg::NoMarker { at })?;
        let marker_at = code_at - 1;
        let after = code_at + 1;
        match code {
            0xD9 => {
                return match size {
                    Some(size) if scanned => Ok((size, after)),
                    _ => Err(NotAJpeg::NoImageData),
                }
            }
            0xD8 => return Err(NotAJpeg::SecondStart { at: marker_at }),
            // TEM and restart markers stand alone, but not right after image data, where the
            // splitter reads TEM as a segment; and FF 00 is stuffing, valid only inside a scan.
            0x01 if !after_scan => {
                at = after;
                continue;
            }
            0xD0..=0xD7 => {
                at = after;
                after_scan = false;
                continue;
            }
            0x00 | 0x01 => return Err(NotAJpeg::NoMarker { at: marker_at }),
            _ => {}
        }
        after_scan = false;
        let length = match (body.get(after), body.get(after + 1)) {
            (Some(&high), Some(&low)) => usize::from(u16::from_be_bytes([high, low])),
            _ => return Err(NotAJpeg::SegmentOverrun { at: marker_at }),
        };
        if length < 2 {
            return Err(NotAJpeg::BadSegmentLength { at: marker_at });
        }
        let segment_end = after + length;
        // The body ends with an EOI, and no segment may reach into it.
        if segment_end > body.len() - 2 {
            return Err(NotAJpeg::SegmentOverrun { at: marker_at });
        }
        let payload = &body[after + 2..segment_end];
        if is_frame_header(code) && size.is_none() {
            size = Some(frame_size(payload, marker_at)?);
        }
        if code != SOS {
            at = segment_end;
            continue;
        }
        if size.is_none() {
            return Err(NotAJpeg::ScanBeforeFrameHeader { at: marker_at });
        }
        check_scan_header(payload, marker_at)?;
        let data_end = scan_end(body, segment_end);
        if data_end == segment_end {
            return Err(NotAJpeg::EmptyScan { at: marker_at });
        }
        scanned = true;
        after_scan = true;
        at = data_end;
    }
}

/// Picture size from the first frame header, if `jpeg` walks as a JPEG (see [`walk`]).
pub fn dimensions(jpeg: &[u8]) -> Option<Dimensions> {
    walk(jpeg).ok()
}

/// SOF0–SOF15, except DHT (C4), JPG (C8) and DAC (CC), which share the range.
fn is_frame_header(code: u8) -> bool {
    (0xC0..=0xCF).contains(&code) && !matches!(code, 0xC4 | 0xC8 | 0xCC)
}

/// Precision(1) height(2) width(2) components(1), then 3 bytes per component.
fn frame_size(payload: &[u8], at: usize) -> Result<Dimensions, NotAJpeg> {
    let malformed = NotAJpeg::BadFrameHeader { at };
    let header = payload.get(..6).ok_or(malformed)?;
    let components = usize::from(header[5]);
    if components == 0 || payload.len() != 6 + 3 * components {
        return Err(malformed);
    }
    let height = u16::from_be_bytes([header[1], header[2]]);
    let width = u16::from_be_bytes([header[3], header[4]]);
    // Height 0 (the size given later by a DNL marker) is legal in T.81 but no camera writes
    // it, and decoders in browsers do not support it.
    let sane = 1..=MAX_SIDE;
    if !sane.contains(&width) || !sane.contains(&height) {
        return Err(NotAJpeg::AbsurdSize { width, height });
    }
    Ok(Dimensions { width, height })
}

/// Components(1), 2 bytes per component, then spectral selection and approximation (3).
fn check_scan_header(payload: &[u8], at: usize) -> Result<(), NotAJpeg> {
    let components = usize::from(*payload.first().ok_or(NotAJpeg::BadScanHeader { at })?);
    if !(1..=4).contains(&components) || payload.len() != 1 + 2 * components + 3 {
        return Err(NotAJpeg::BadScanHeader { at });
    }
    Ok(())
}

/// Where the entropy-coded data starting at `from` ends: the first 0xFF (fill included) that
/// is not stuffing (FF 00) or a restart marker (FF D0–D7). The body ends in FF D9, so there
/// always is one.
fn scan_end(body: &[u8], from: usize) -> usize {
    let mut at = from;
    while let Some(offset) = body[at..].iter().position(|&byte| byte == 0xFF) {
        let ff = at + offset;
        let mut next = ff + 1;
        while body.get(next) == Some(&0xFF) {
            next += 1;
        }
        match body.get(next) {
            Some(0x00 | 0xD0..=0xD7) => at = next + 1,
            _ => return ff,
        }
    }
    body.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal marker layout: SOI, APP0 (JFIF), SOF0 640×480, SOS, one data byte, EOI.
    fn sample(width: u16, height: u16, sof_marker: u8) -> Vec<u8> {
        let mut jpeg = vec![0xFF, 0xD8];
        jpeg.extend_from_slice(&[0xFF, 0xE0, 0x00, 0x10]);
        jpeg.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        jpeg.extend_from_slice(&[0xFF, sof_marker, 0x00, 0x0B, 0x08]);
        jpeg.extend_from_slice(&height.to_be_bytes());
        jpeg.extend_from_slice(&width.to_be_bytes());
        jpeg.extend_from_slice(&[0x01, 0x01, 0x11, 0x00]);
        jpeg.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00]);
        jpeg.extend_from_slice(&[0x12, 0xFF, 0x00, 0x34]);
        jpeg.extend_from_slice(&EOI);
        jpeg
    }

    #[test]
    fn complete_jpegs_pass_and_truncated_ones_do_not() {
        let jpeg = sample(640, 480, 0xC0);
        assert!(walk(&jpeg).is_ok());
        assert_eq!(walk(&jpeg[..jpeg.len() - 1]), Err(NotAJpeg::MissingEnd));
        assert_eq!(walk(&jpeg[1..]), Err(NotAJpeg::MissingStart));
        assert_eq!(walk(b"GIF89a"), Err(NotAJpeg::MissingStart));
        assert_eq!(walk(&[0xFF, 0xD8, 0xFF]), Err(NotAJpeg::MissingStart));
        assert_eq!(walk(&[0xFF, 0xD8, 0xFF, 0xD9]), Err(NotAJpeg::NoImageData));
        // Cut anywhere up to its image data and closed with FF D9 again: never accepted. (A
        // cut inside the image data cannot be told from a shorter picture without decoding.)
        let data_start = jpeg.len() - 6;
        for cut in 2..=data_start {
            let mut cut_short = jpeg[..cut].to_vec();
            cut_short.extend_from_slice(&EOI);
            assert!(walk(&cut_short).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn noise_between_start_and_end_is_refused() {
        let mut state = 0x2545_F491_u32;
        for length in [10, 100, 10_000, 100_000] {
            let mut body = SOI.to_vec();
            body.extend((0..length).map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as u8
            }));
            body.extend_from_slice(&EOI);
            assert!(walk(&body).is_err(), "{length} bytes of noise");
        }
    }

    #[test]
    fn absurd_sizes_and_broken_headers_are_refused() {
        assert_eq!(
            walk(&sample(65535, 65535, 0xC0)),
            Err(NotAJpeg::AbsurdSize {
                width: 65535,
                height: 65535
            })
        );
        assert!(matches!(
            walk(&sample(640, 0, 0xC0)),
            Err(NotAJpeg::AbsurdSize { .. })
        ));
        assert!(walk(&sample(MAX_SIDE, MAX_SIDE, 0xC2)).is_ok());
        // A frame header whose length disagrees with its component count.
        let mut jpeg = sample(640, 480, 0xC0);
        jpeg[29] = 2;
        assert!(matches!(walk(&jpeg), Err(NotAJpeg::BadFrameHeader { .. })));
        // An empty scan, a scan before the frame header, and two images in one body.
        let mut empty_scan = sample(640, 480, 0xC0);
        empty_scan.drain(empty_scan.len() - 6..empty_scan.len() - 2);
        assert!(matches!(walk(&empty_scan), Err(NotAJpeg::EmptyScan { .. })));
        let mut no_frame = vec![0xFF, 0xD8];
        no_frame.extend_from_slice(&sample(640, 480, 0xC0)[33..]);
        assert!(matches!(
            walk(&no_frame),
            Err(NotAJpeg::ScanBeforeFrameHeader { .. })
        ));
        let mut inside = sample(640, 480, 0xC0);
        inside.splice(20..20, [0xFF, 0xD8]);
        assert!(matches!(walk(&inside), Err(NotAJpeg::SecondStart { .. })));
        // A second whole image after the first (a gain map) is fine; other data is not.
        let two = [sample(640, 480, 0xC0), sample(320, 240, 0xC0)].concat();
        assert_eq!(walk(&two).map(|size| size.width), Ok(640));
        let mut broken_second = two.clone();
        broken_second.truncate(broken_second.len() - 4);
        broken_second.extend_from_slice(&EOI);
        assert!(walk(&broken_second).is_ok());
        broken_second.truncate(two.len() / 2 + 20);
        broken_second.extend_from_slice(&EOI);
        assert!(walk(&broken_second).is_err());
        let mut trailing = sample(640, 480, 0xC0);
        trailing.extend_from_slice(&[0x00, 0xFF, 0xD9]);
        assert!(matches!(walk(&trailing), Err(NotAJpeg::EndsEarly { .. })));
    }

    #[test]
    fn reads_size_from_baseline_and_progressive_frame_headers() {
        assert_eq!(
            dimensions(&sample(640, 480, 0xC0)),
            Some(Dimensions {
                width: 640,
                height: 480
            })
        );
        assert_eq!(
            dimensions(&sample(1280, 720, 0xC2)),
            Some(Dimensions {
                width: 1280,
                height: 720
            })
        );
    }

    #[test]
    fn skips_tables_fill_bytes_stuffing_restarts_and_later_scans() {
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xFF, 0xC4, 0x00, 0x04, 0xAA, 0xBB];
        jpeg.extend_from_slice(&sample(320, 240, 0xC0)[2..]);
        assert_eq!(
            dimensions(&jpeg),
            Some(Dimensions {
                width: 320,
                height: 240
            })
        );
        // Scan data with stuffed bytes and a restart marker, then a table and a second scan.
        let mut progressive = sample(320, 240, 0xC2);
        progressive.truncate(progressive.len() - 2);
        progressive.extend_from_slice(&[0x01, 0xFF, 0x00, 0xFF, 0xD3, 0x02]);
        progressive.extend_from_slice(&[0xFF, 0xC4, 0x00, 0x04, 0xAA, 0xBB]);
        progressive.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00]);
        progressive.extend_from_slice(&[0x3F, 0x00, 0x07, 0xFF, 0xFF, 0xD9]);
        assert!(walk(&progressive).is_ok());
    }

    #[test]
    fn malformed_input_gives_an_error_not_a_panic() {
        let jpeg = sample(640, 480, 0xC0);
        for cut in 0..jpeg.len() {
            let _ = walk(&jpeg[..cut]);
        }
        assert_eq!(dimensions(&[0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02]), None);
        assert_eq!(dimensions(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x00]), None);
        assert_eq!(dimensions(&[0xFF, 0xD8, 0x00]), None);
        assert_eq!(dimensions(&[0xFF, 0xD8, 0xFF, 0xE0, 0xFF, 0xFF]), None);
    }

    #[test]
    fn what_the_walk_accepts_the_splitter_finds_as_one_frame() {
        use crate::relay::splitter::{Found, JpegSplitter};
        let jpeg = sample(640, 480, 0xC0);
        let mut splitter = JpegSplitter::new(jpeg.len());
        let mut found = Vec::new();
        splitter.feed(&jpeg, |f| found.push(f));
        assert_eq!(found, [Found::Frame(jpeg)]);
    }
}
