//! Splitting a `multipart/x-mixed-replace` stream into its parts, by `Content-Length`.
//!
//! Both servers send `--frame_boundary`, then `Content-Type` and `Content-Length` headers, a
//! blank line, exactly that many JPEG bytes and `\r\n`; they differ in when the boundary goes
//! out (streampump sends the next delimiter right after each frame, the reference before the
//! next one). Going by the length rather than by scanning for the boundary means a part is
//! complete the moment its last byte is read, whichever way the server orders the rest, which
//! is the moment the relay latency is measured at. Boundary and blank lines between parts are
//! skipped; header names are matched case-insensitively. The payload is not kept: only its
//! first bytes (where the loadgen stamp sits) and whether it ends with EOI.

use std::io::{self, BufRead};

use crate::http::{self, invalid};

/// How many leading payload bytes a [`Part`] keeps.
pub const HEAD_BYTES: usize = 64;
/// Lines tolerated between two parts before the stream is declared garbage.
const MAX_LINES_BETWEEN_PARTS: usize = 32;
/// Longest boundary or part-header line accepted.
const MAX_LINE: usize = 1024;
/// Largest part accepted: far above any frame loadgen pushes.
const MAX_PART_BYTES: u64 = 256 * 1024 * 1024;

/// One part of the stream, after its last byte has been read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub length: u64,
    /// The first `min(length, HEAD_BYTES)` payload bytes.
    pub head: Vec<u8>,
    /// The payload ends with the JPEG end-of-image marker `FF D9`.
    pub ends_with_eoi: bool,
}

pub struct PartReader<R> {
    inner: R,
    line: Vec<u8>,
}

impl<R: BufRead> PartReader<R> {
    pub fn new(inner: R) -> PartReader<R> {
        PartReader {
            inner,
            line: Vec::with_capacity(128),
        }
    }

    /// Reads up to and including the last payload byte of the next part.
    pub fn next_part(&mut self) -> io::Result<Part> {
        let length = self.read_headers()?;
        self.read_payload(length)
    }

    /// Skips boundary and blank lines, then reads one header block and returns its length.
    fn read_headers(&mut self) -> io::Result<u64> {
        let mut length = None;
        let mut in_headers = false;
        for _ in 0..MAX_LINES_BETWEEN_PARTS {
            if !http::read_line(&mut self.inner, &mut self.line, MAX_LINE)? {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "stream ended between parts",
                ));
            }
            let line = String::from_utf8_lossy(&self.line);
            if !in_headers {
                if line.is_empty() {
                    continue;
                }
                if let Some(boundary) = line.strip_prefix("--") {
                    if boundary.trim_end().ends_with("--") {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "stream closed by its final boundary",
                        ));
                    }
                    continue;
                }
                in_headers = true;
            }
            if line.is_empty() {
                return length.ok_or_else(|| invalid("part without a Content-Length header"));
            }
            let Some((name, value)) = line.split_once(':') else {
                return Err(invalid(format!("expected a part header, got {line:?}")));
            };
            if name.trim().eq_ignore_ascii_case("content-length") {
                let value = value.trim();
                let parsed: u64 = value
                    .parse()
                    .map_err(|_| invalid(format!("bad part Content-Length {value:?}")))?;
                if parsed > MAX_PART_BYTES {
                    return Err(invalid(format!(
                        "part of {parsed} bytes is implausibly large"
                    )));
                }
                length = Some(parsed);
            }
        }
        Err(invalid(format!(
            "no part found in {MAX_LINES_BETWEEN_PARTS} lines"
        )))
    }

    /// Consumes `length` payload bytes straight from the reader's buffer, keeping the head.
    fn read_payload(&mut self, length: u64) -> io::Result<Part> {
        let mut head = Vec::with_capacity(HEAD_BYTES);
        let mut last_two = [0u8; 2];
        let mut left = length;
        while left > 0 {
            let available = self.inner.fill_buf()?;
            if available.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("stream ended {left} bytes before the end of a part"),
                ));
            }
            let take = available
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            let bytes = &available[..take];
            let wanted = (HEAD_BYTES - head.len()).min(take);
            head.extend_from_slice(&bytes[..wanted]);
            match bytes {
                [.., a, b] => last_two = [*a, *b],
                [b] => last_two = [last_two[1], *b],
                [] => {}
            }
            self.inner.consume(take);
            left -= take as u64;
        }
        Ok(Part {
            length,
            head,
            ends_with_eoi: length >= 2 && last_two == [0xFF, 0xD9],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunked::tests::Trickle;
    use std::io::BufReader;

    fn jpeg(fill: u8, length: usize) -> Vec<u8> {
        let mut bytes = vec![fill; length];
        bytes[..2].copy_from_slice(&[0xFF, 0xD8]);
        bytes[length - 2..].copy_from_slice(&[0xFF, 0xD9]);
        bytes
    }

    fn part_bytes(header_case: &str, payload: &[u8]) -> Vec<u8> {
        let mut bytes = format!(
            "--frame_boundary\r\nContent-Type: image/jpeg\r\n{header_case}: {}\r\n\r\n",
            payload.len()
        )
        .into_bytes();
        bytes.extend_from_slice(payload);
        bytes.extend_from_slice(b"\r\n");
        bytes
    }

    #[test]
    fn reads_parts_in_the_reference_layout_however_split() {
        let first = jpeg(1, 100);
        let second = jpeg(2, 3);
        let mut wire = part_bytes("Content-Length", &first);
        wire.extend(part_bytes("content-length", &second));
        for step in [1, 2, 5, 13, 64, 1000] {
            let source = BufReader::with_capacity(16, Trickle { bytes: &wire, step });
            let mut parts = PartReader::new(source);
            let part = parts.next_part().unwrap();
            assert_eq!(part.length, 100);
            assert_eq!(part.head, first[..HEAD_BYTES]);
            assert!(part.ends_with_eoi, "step {step}");
            let part = parts.next_part().unwrap();
            assert_eq!((part.length, &part.head[..]), (3, &second[..]));
            assert!(part.ends_with_eoi, "step {step}");
            assert_eq!(
                parts.next_part().unwrap_err().kind(),
                io::ErrorKind::UnexpectedEof
            );
        }
    }

    #[test]
    fn a_part_is_complete_before_the_next_delimiter_arrives() {
        // streampump's layout: the delimiter goes with the head, then frame, CRLF, delimiter.
        let payload = jpeg(7, 10);
        let mut wire = b"--frame_boundary\r\nCONTENT-LENGTH:10\r\n\r\n".to_vec();
        wire.extend_from_slice(&payload);
        let mut parts = PartReader::new(BufReader::new(&wire[..]));
        let part = parts.next_part().unwrap();
        assert_eq!(part.head, payload);
        assert!(part.ends_with_eoi);
    }

    #[test]
    fn a_truncated_frame_is_noticed() {
        let mut cut = jpeg(3, 10);
        cut[9] = 0x00;
        let wire = part_bytes("Content-Length", &cut);
        let part = PartReader::new(BufReader::new(&wire[..]))
            .next_part()
            .unwrap();
        assert!(!part.ends_with_eoi);

        let wire = &part_bytes("Content-Length", &jpeg(3, 10))[..40];
        let error = PartReader::new(BufReader::new(wire))
            .next_part()
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn parts_without_length_or_with_garbage_are_errors() {
        let wire = b"--frame_boundary\r\nContent-Type: image/jpeg\r\n\r\nxx";
        let error = PartReader::new(BufReader::new(&wire[..]))
            .next_part()
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);

        let wire = b"<html>not a stream</html>\r\n";
        let error = PartReader::new(BufReader::new(&wire[..]))
            .next_part()
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);

        let wire = b"\r\n--frame_boundary--\r\n";
        let error = PartReader::new(BufReader::new(&wire[..]))
            .next_part()
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }
}
