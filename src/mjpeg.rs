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

use std::io::{self, Write};

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
pub fn response_head(http_10: bool, head_only: bool) -> String {
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
         \r\n{opening}",
        env!("CARGO_PKG_VERSION")
    )
}

/// Writes the parts of one viewer's stream.
pub struct PartWriter<W: Write> {
    out: W,
    advance_headers: bool,
    /// The current part's headers already went out after the previous frame.
    headers_sent_ahead: bool,
}

impl<W: Write> PartWriter<W> {
    /// Sends the response head; parts follow with [`PartWriter::write_part`].
    pub fn start(mut out: W, http_10: bool, advance_headers: bool) -> io::Result<Self> {
        out.write_all(response_head(http_10, false).as_bytes())?;
        out.flush()?;
        Ok(PartWriter {
            out,
            advance_headers,
            headers_sent_ahead: false,
        })
    }

    /// Writes one frame as a part and flushes it with the delimiter that ends it. The frame
    /// bytes go from the shared buffer straight to the socket: the writer below buffers only
    /// the small header and delimiter.
    pub fn write_part(&mut self, jpeg: &[u8]) -> io::Result<()> {
        if !self.headers_sent_ahead {
            write!(
                self.out,
                "Content-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                jpeg.len()
            )?;
        }
        self.out.write_all(jpeg)?;
        self.out.write_all(PART_END)?;
        if self.advance_headers {
            self.out.write_all(ADVANCE_HEADERS)?;
            self.headers_sent_ahead = true;
        }
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_bytes_match_the_reference_layout() {
        let mut wire = Vec::new();
        let mut parts = PartWriter::start(&mut wire, false, false).unwrap();
        parts.write_part(b"AB").unwrap();
        parts.write_part(b"CDE").unwrap();
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
        let mut parts = PartWriter::start(&mut wire, true, true).unwrap();
        parts.write_part(b"AB").unwrap();
        parts.write_part(b"CD").unwrap();
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
    fn head_responses_have_no_body() {
        assert!(response_head(false, true).ends_with("\r\n\r\n"));
        assert!(response_head(false, false).ends_with("\r\n\r\n--frame_boundary\r\n"));
    }
}
