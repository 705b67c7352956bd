//! The MJPEG wire format: every byte the relay writes on a stream, and the constants for it.
//!
//! Byte for byte what the reference server sends (existing go2rtc configs depend on it), with
//! two changes in timing only (see the interop notes in the project docs):
//! - the first delimiter goes out with the response headers, and every frame is followed at once
//!   by the next delimiter and flushed with it, so boundary-scanning clients (VLC, Firefox) can
//!   finish a part immediately instead of one frame later;
//! - the response is written raw, never chunked and close-delimited, as µStreamer and
//!   mjpg-streamer do, because simple MJPEG clients (motionEye, several node libraries) cannot
//!   de-chunk.
//!
//! Every part has `Content-Type: image/jpeg` (ffmpeg and VLC reject anything else) and
//! `Content-Length` (go2rtc refuses parts without it, go2rtc issue 1833).
//!
//! A part's bytes are the same for every viewer, so a pushed frame is stored ready to send: one
//! shared buffer holding the part headers, the JPEG (read from the pusher straight into place)
//! and the delimiter that ends the part. A viewer then sends a frame with a single write straight
//! to its socket: one system call and one burst of TCP segments per frame per viewer, instead of
//! three when the header, the frame and the delimiter are written separately.

use std::io::{self, Write};
use std::ops::Range;
use std::sync::Arc;

use crate::relay::memory::Charge;

/// The multipart boundary the reference server uses.
pub const BOUNDARY: &str = "frame_boundary";

/// The stream's `Content-Type`: token unquoted, no leading dashes, as clients expect.
pub const STREAM_CONTENT_TYPE: &str = "multipart/x-mixed-replace; boundary=frame_boundary";

/// Caching headers for everything that shows a live picture.
pub const CACHE_CONTROL: &str = "no-cache, no-store, must-revalidate, private";
pub const PRAGMA: &str = "no-cache";

/// Ends a part and opens the next one, flushed together with the frame.
const PART_END: &[u8] = b"\r\n--frame_boundary\r\n";

/// The next part's headers sent ahead of time for `?advance_headers=1`. Chromium paints a part
/// only once the next part's header block has arrived (crbug 527446); µStreamer's answer.
const ADVANCE_HEADERS: &[u8] = b"Content-Type: image/jpeg\r\n\r\n";

/// The status line and headers of a stream response, and for GET the opening delimiter.
/// `extra_lines` are further header lines decided per request (CORS), each ending in CRLF.
pub fn response_head(http_10: bool, head_only: bool, extra_lines: &str) -> String {
    let version = if http_10 { "HTTP/1.0" } else { "HTTP/1.1" };
    let opening = if head_only {
        ""
    } else {
        "--frame_boundary\r\n"
    };
    format!(
        "{version} 200 OK\r\n\
         Content-Type: {STREAM_CONTENT_TYPE}\r\n\
         Cache-Control: {CACHE_CONTROL}\r\n\
         Pragma: {PRAGMA}\r\n\
         Expires: 0\r\n\
         Connection: close\r\n\
         Server: streampump/{}\r\n\
         {extra_lines}\r\n{opening}",
        env!("CARGO_PKG_VERSION")
    )
}

/// One frame laid out as a multipart part, shared by every viewer:
/// `[part headers][JPEG][\r\n--frame_boundary\r\n][advance headers]`.
///
/// The buffer carries the frame's memory charge (see `memory`), so the bytes stay counted
/// against `--memory-budget` for exactly as long as anyone holds the part.
#[derive(Debug, Clone)]
pub struct Part {
    buffer: Arc<Buffer>,
    jpeg: Range<usize>,
}

#[derive(Debug)]
struct Buffer {
    bytes: Box<[u8]>,
    charge: Option<Charge>,
}

impl Part {
    /// Bytes a part holding a JPEG of `jpeg_len` bytes takes: what a push is charged.
    pub fn size_for(jpeg_len: usize) -> usize {
        part_headers(jpeg_len).len() + jpeg_len + PART_END.len() + ADVANCE_HEADERS.len()
    }

    /// Lays out a part for a JPEG of `jpeg_len` bytes and lets `fill` write the JPEG into its
    /// place, so a pushed body lands in the shared buffer without a copy. `charge` pays for
    /// the buffer (at least [`Part::size_for`] bytes) until the last clone of the part drops.
    pub fn with_jpeg<E>(
        jpeg_len: usize,
        charge: Option<Charge>,
        fill: impl FnOnce(&mut [u8]) -> Result<(), E>,
    ) -> Result<Part, E> {
        let headers = part_headers(jpeg_len);
        let jpeg = headers.len()..headers.len() + jpeg_len;
        let total = jpeg.end + PART_END.len() + ADVANCE_HEADERS.len();
        let mut bytes = vec![0u8; total].into_boxed_slice();
        bytes[..jpeg.start].copy_from_slice(headers.as_bytes());
        fill(&mut bytes[jpeg.clone()])?;
        bytes[jpeg.end..jpeg.end + PART_END.len()].copy_from_slice(PART_END);
        bytes[jpeg.end + PART_END.len()..].copy_from_slice(ADVANCE_HEADERS);
        Ok(Part {
            buffer: Arc::new(Buffer { bytes, charge }),
            jpeg,
        })
    }

    /// A part holding a copy of `jpeg` (for built-in pictures and frames found in a stream).
    pub fn from_jpeg(jpeg: &[u8], charge: Option<Charge>) -> Part {
        let copied: Result<Part, std::convert::Infallible> =
            Part::with_jpeg(jpeg.len(), charge, |slot| {
                slot.copy_from_slice(jpeg);
                Ok(())
            });
        match copied {
            Ok(part) => part,
            Err(never) => match never {},
        }
    }

    pub fn jpeg(&self) -> &[u8] {
        &self.buffer.bytes[self.jpeg.clone()]
    }

    /// The whole shared buffer, and where the JPEG sits in it: [`Part::buffer`]
    /// `[`[`Part::jpeg_range`]`]` is the JPEG.
    pub fn buffer(&self) -> &[u8] {
        &self.buffer.bytes
    }

    pub fn jpeg_range(&self) -> Range<usize> {
        self.jpeg.clone()
    }

    /// Whether both are the same frame in memory (a clone, not a copy).
    pub fn shares_buffer_with(&self, other: &Part) -> bool {
        Arc::ptr_eq(&self.buffer, &other.buffer)
    }

    /// The memory charge of the frame, if it has one (built-in pictures do not).
    pub fn charge(&self) -> Option<&Charge> {
        self.buffer.charge.as_ref()
    }

    /// Headers, JPEG and the delimiter that ends the part.
    fn complete(&self) -> &[u8] {
        &self.buffer.bytes[..self.jpeg.end + PART_END.len()]
    }

    /// Everything, with the next part's headers sent ahead.
    fn complete_with_advance(&self) -> &[u8] {
        &self.buffer.bytes
    }

    /// The JPEG, the delimiter and the next part's headers: for a viewer that already got
    /// this part's headers in advance.
    fn after_advance_headers(&self) -> &[u8] {
        &self.buffer.bytes[self.jpeg.start..]
    }
}

fn part_headers(jpeg_len: usize) -> String {
    format!("Content-Type: image/jpeg\r\nContent-Length: {jpeg_len}\r\n\r\n")
}

/// Writes the parts of one viewer's stream.
pub struct PartWriter<W: Write> {
    out: W,
    advance_headers: bool,
    /// The current part's headers already went out after the previous frame.
    headers_sent_ahead: bool,
}

impl<W: Write> PartWriter<W> {
    /// Sends the response head (from [`response_head`]); parts follow with
    /// [`PartWriter::write_part`].
    pub fn start(mut out: W, head: &str, advance_headers: bool) -> io::Result<Self> {
        out.write_all(head.as_bytes())?;
        out.flush()?;
        Ok(PartWriter {
            out,
            advance_headers,
            headers_sent_ahead: false,
        })
    }

    /// Writes one part in a single write and flushes it: the frame and the delimiter that
    /// ends it leave together.
    pub fn write_part(&mut self, part: &Part) -> io::Result<()> {
        let bytes = match (self.advance_headers, self.headers_sent_ahead) {
            (false, _) => part.complete(),
            (true, false) => part.complete_with_advance(),
            (true, true) => part.after_advance_headers(),
        };
        self.out.write_all(bytes)?;
        self.headers_sent_ahead = self.advance_headers;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_bytes_match_the_reference_layout() {
        let mut wire = Vec::new();
        let mut parts =
            PartWriter::start(&mut wire, &response_head(false, false, ""), false).unwrap();
        parts.write_part(&Part::from_jpeg(b"AB", None)).unwrap();
        parts.write_part(&Part::from_jpeg(b"CDE", None)).unwrap();
        let text = String::from_utf8(wire).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(head
            .contains("\r\nContent-Type: multipart/x-mixed-replace; boundary=frame_boundary\r\n"));
        assert!(head.contains("\r\nConnection: close"));
        assert!(!head.to_ascii_lowercase().contains("transfer-encoding"));
        assert_eq!(
            body,
            "--frame_boundary\r\nContent-Type: image/jpeg\r\nContent-Length: 2\r\n\r\nAB\r\n\
             --frame_boundary\r\nContent-Type: image/jpeg\r\nContent-Length: 3\r\n\r\nCDE\r\n\
             --frame_boundary\r\n"
        );
    }

    #[test]
    fn advance_headers_move_each_parts_headers_forward() {
        let mut wire = Vec::new();
        let mut parts =
            PartWriter::start(&mut wire, &response_head(true, false, ""), true).unwrap();
        parts.write_part(&Part::from_jpeg(b"AB", None)).unwrap();
        parts.write_part(&Part::from_jpeg(b"CD", None)).unwrap();
        let text = String::from_utf8(wire).unwrap();
        assert!(text.starts_with("HTTP/1.0 200 OK\r\n"));
        let body = text.split_once("\r\n\r\n").unwrap().1;
        assert_eq!(
            body,
            "--frame_boundary\r\nContent-Type: image/jpeg\r\nContent-Length: 2\r\n\r\nAB\r\n\
             --frame_boundary\r\nContent-Type: image/jpeg\r\n\r\nCD\r\n\
             --frame_boundary\r\nContent-Type: image/jpeg\r\n\r\n"
        );
    }

    #[test]
    fn a_part_is_filled_in_place_and_keeps_its_jpeg() {
        let part = Part::with_jpeg(3, None, |slot| {
            slot.copy_from_slice(b"xyz");
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(part.jpeg(), b"xyz");
        assert_eq!(
            part.complete(),
            b"Content-Type: image/jpeg\r\nContent-Length: 3\r\n\r\nxyz\r\n--frame_boundary\r\n"
        );
        assert_eq!(&part.buffer()[part.jpeg_range()], b"xyz");
        assert_eq!(part.buffer().len(), Part::size_for(3));
        assert!(Part::with_jpeg(3, None, |_| Err("refused")).is_err());
    }

    #[test]
    fn head_responses_have_no_body() {
        assert!(response_head(false, true, "").ends_with("\r\n\r\n"));
        assert!(response_head(false, false, "").ends_with("\r\n\r\n--frame_boundary\r\n"));
    }
}
