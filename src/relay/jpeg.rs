//! The little the relay needs to know about JPEG: is a body a complete JPEG, and how big is
//! the picture.
//!
//! A pushed body is accepted when it starts with SOI (`FF D8`) and ends with EOI (`FF D9`): a
//! truncated upload (a phone that lost Wi-Fi mid-POST) fails the second test and would otherwise
//! show up in every viewer as a grey half-picture. Width and height come from the first
//! start-of-frame marker and are shown in the status; nothing is decoded.

/// Start of image, the first two bytes of every JPEG.
pub const SOI: [u8; 2] = [0xFF, 0xD8];
/// End of image, the last two bytes of every complete JPEG.
pub const EOI: [u8; 2] = [0xFF, 0xD9];

/// Why a body is not accepted as a JPEG, worded for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAJpeg {
    MissingStart,
    MissingEnd,
}

impl std::fmt::Display for NotAJpeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotAJpeg::MissingStart => {
                f.write_str("body is not a JPEG: it must start with FF D8 (start of image)")
            }
            NotAJpeg::MissingEnd => f.write_str(
                "body is not a complete JPEG: it must end with FF D9 (end of image); \
                 was the upload cut short?",
            ),
        }
    }
}

/// Checks that `body` is framed as one complete JPEG.
pub fn check_complete(body: &[u8]) -> Result<(), NotAJpeg> {
    if body.len() < 4 || body[..2] != SOI {
        return Err(NotAJpeg::MissingStart);
    }
    if body[body.len() - 2..] != EOI {
        return Err(NotAJpeg::MissingEnd);
    }
    Ok(())
}

/// Picture size in pixels, as declared by the frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dimensions {
    pub width: u16,
    pub height: u16,
}

/// Finds the first start-of-frame marker (SOF0–SOF15 except DHT, JPG and DAC) and reads the
/// picture size from it. Walks the marker segments by their lengths and stops at start of scan,
/// so it never looks inside entropy-coded data. Returns `None` for anything malformed.
pub fn dimensions(jpeg: &[u8]) -> Option<Dimensions> {
    if jpeg.get(..2)? != SOI {
        return None;
    }
    let mut at = 2;
    loop {
        // Markers may be preceded by any number of 0xFF fill bytes (ITU T.81 B.1.1.2).
        while *jpeg.get(at)? == 0xFF && *jpeg.get(at + 1)? == 0xFF {
            at += 1;
        }
        if *jpeg.get(at)? != 0xFF {
            return None;
        }
        let marker = *jpeg.get(at + 1)?;
        at += 2;
        match marker {
            // Stand-alone markers carry no length.
            0x01 | 0xD0..=0xD7 => continue,
            // Start of scan or end of image before any frame header: no size to find.
            0xDA | 0xD9 => return None,
            _ => {}
        }
        let length = usize::from(u16::from_be_bytes([*jpeg.get(at)?, *jpeg.get(at + 1)?]));
        if length < 2 {
            return None;
        }
        let is_frame_header =
            (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_frame_header {
            // Segment: length(2) precision(1) height(2) width(2) ...
            let segment = jpeg.get(at..at + length)?;
            let height = u16::from_be_bytes([*segment.get(3)?, *segment.get(4)?]);
            let width = u16::from_be_bytes([*segment.get(5)?, *segment.get(6)?]);
            return Some(Dimensions { width, height });
        }
        at = at.checked_add(length)?;
    }
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
        assert_eq!(check_complete(&jpeg), Ok(()));
        assert_eq!(
            check_complete(&jpeg[..jpeg.len() - 1]),
            Err(NotAJpeg::MissingEnd)
        );
        assert_eq!(check_complete(&jpeg[1..]), Err(NotAJpeg::MissingStart));
        assert_eq!(check_complete(b"GIF89a"), Err(NotAJpeg::MissingStart));
        assert_eq!(
            check_complete(&[0xFF, 0xD8, 0xFF]),
            Err(NotAJpeg::MissingStart)
        );
        assert_eq!(check_complete(&[0xFF, 0xD8, 0xFF, 0xD9]), Ok(()));
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
    fn skips_huffman_tables_and_fill_bytes() {
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xFF, 0xC4, 0x00, 0x04, 0xAA, 0xBB];
        jpeg.extend_from_slice(&sample(320, 240, 0xC0)[2..]);
        assert_eq!(
            dimensions(&jpeg),
            Some(Dimensions {
                width: 320,
                height: 240
            })
        );
    }

    #[test]
    fn malformed_input_gives_none_not_a_panic() {
        let jpeg = sample(640, 480, 0xC0);
        for cut in 0..jpeg.len() {
            let _ = dimensions(&jpeg[..cut]);
        }
        assert_eq!(dimensions(&[0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02]), None);
        assert_eq!(dimensions(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x00]), None);
        assert_eq!(dimensions(&[0xFF, 0xD8, 0x00]), None);
        assert_eq!(dimensions(&[0xFF, 0xD8, 0xFF, 0xE0, 0xFF, 0xFF]), None);
    }
}
