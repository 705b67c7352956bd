//! A de-chunking reader for `Transfer-Encoding: chunked` bodies (RFC 9112 §7.1).
//!
//! Needed because the reference Go server streams through net/http, which chunks any HTTP/1.1
//! answer written without a `Content-Length`; streampump writes its stream raw. Chunk
//! boundaries carry no meaning for MJPEG (Go cuts chunks wherever its buffers flush), so this
//! reader simply yields the payload bytes.
//!
//! The `\r\n` that closes a chunk is consumed lazily, at the next read, not right after the
//! chunk's last byte: Go leaves that `\r\n` in its connection buffer until its next write, up
//! to 50 ms later, and waiting for it would add that delay to every measured frame.

use std::io::{self, BufRead, Read};

use crate::http::{self, invalid};

/// Longest chunk-size line or trailer line accepted.
const MAX_LINE: usize = 1024;

pub struct ChunkedReader<R> {
    inner: R,
    state: State,
    line: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk with this many payload bytes left.
    Data(u64),
    /// A chunk's payload is complete; its closing `\r\n` is still to be read.
    DataEnd,
    /// The last chunk and the trailer have been read.
    Done,
}

impl<R: BufRead> ChunkedReader<R> {
    pub fn new(inner: R) -> ChunkedReader<R> {
        ChunkedReader {
            inner,
            state: State::Size,
            line: Vec::with_capacity(32),
        }
    }

    fn read_line(&mut self, what: &str) -> io::Result<()> {
        if http::read_line(&mut self.inner, &mut self.line, MAX_LINE)? {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("chunked body ended before {what}"),
            ))
        }
    }

    /// Reads a chunk-size line; extensions after `;` are ignored.
    fn read_size(&mut self) -> io::Result<u64> {
        self.read_line("a chunk size")?;
        let text = String::from_utf8_lossy(&self.line);
        let digits = text.split(';').next().unwrap_or_default().trim();
        u64::from_str_radix(digits, 16).map_err(|_| invalid(format!("bad chunk size {text:?}")))
    }
}

impl<R: BufRead> Read for ChunkedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match self.state {
                State::Done => return Ok(0),
                State::DataEnd => {
                    self.read_line("the end of a chunk")?;
                    if !self.line.is_empty() {
                        return Err(invalid("chunk longer than its declared size"));
                    }
                    self.state = State::Size;
                }
                State::Size => match self.read_size()? {
                    0 => {
                        // Trailer fields, if any, up to the blank line.
                        loop {
                            self.read_line("the end of the trailer")?;
                            if self.line.is_empty() {
                                break;
                            }
                        }
                        self.state = State::Done;
                    }
                    size => self.state = State::Data(size),
                },
                State::Data(left) => {
                    let wanted = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let read = self.inner.read(&mut buf[..wanted])?;
                    if read == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "stream ended inside a chunk",
                        ));
                    }
                    let left = left - read as u64;
                    self.state = if left == 0 {
                        State::DataEnd
                    } else {
                        State::Data(left)
                    };
                    return Ok(read);
                }
            }
        }
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::io::BufReader;

    /// Hands out its bytes a few at a time, as a socket does under load.
    pub struct Trickle<'a> {
        pub bytes: &'a [u8],
        pub step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let count = self.step.min(buf.len()).min(self.bytes.len());
            buf[..count].copy_from_slice(&self.bytes[..count]);
            self.bytes = &self.bytes[count..];
            Ok(count)
        }
    }

    fn dechunk(wire: &[u8], step: usize) -> io::Result<Vec<u8>> {
        let source = BufReader::with_capacity(4, Trickle { bytes: wire, step });
        let mut out = Vec::new();
        ChunkedReader::new(source).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn joins_chunks_however_the_bytes_arrive() {
        let wire = b"4\r\nWiki\r\n6;name=value\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\n\r\n";
        for step in [1, 2, 3, 7, 100] {
            assert_eq!(
                dechunk(wire, step).unwrap(),
                b"Wikipedia in \r\n\r\nchunks.",
                "{step}"
            );
        }
    }

    #[test]
    fn skips_trailers_and_accepts_upper_case_sizes() {
        let wire = b"A\r\n0123456789\r\n0\r\nExpires: never\r\n\r\n";
        assert_eq!(dechunk(wire, 5).unwrap(), b"0123456789");
    }

    #[test]
    fn returns_a_chunk_before_its_closing_crlf_arrives() {
        // Go keeps the chunk's closing CRLF buffered until its next write.
        let mut reader = ChunkedReader::new(&b"3\r\nabc"[..]);
        let mut buf = [0u8; 8];
        assert_eq!(reader.read(&mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"abc");
        assert_eq!(
            reader.read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }

    #[test]
    fn rejects_bad_sizes_and_overlong_chunks() {
        assert_eq!(
            dechunk(b"zz\r\nabc\r\n0\r\n\r\n", 3).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        assert_eq!(
            dechunk(b"2\r\nabc\r\n0\r\n\r\n", 3).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        assert_eq!(
            dechunk(b"5\r\nab", 3).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }
}
