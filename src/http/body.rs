//! A request body: how it is framed (RFC 9112 §6), and a reader that stops at its end.
//!
//! Framing is where request smuggling lives, so it is strict:
//! - `Transfer-Encoding` must be exactly `chunked`; any other coding (`gzip, chunked`,
//!   `chunked, gzip`, `identity`) is refused, as is `Transfer-Encoding` together with
//!   `Content-Length` or on an HTTP/1.0 request;
//! - `Content-Length` must be digits, and all its values the same;
//! - neither header: no body.
//!
//! Refusals here are 400s, and the connection closes after them (its framing is unknown). A
//! body is never buffered whole: the reader hands out what arrives, and the caller decides
//! how much to take (the frame cap). Whatever it leaves unread closes the connection too, so
//! the rest of a body is never read as a next request.
//!
//! `Expect: 100-continue` (curl sends it for bodies over a megabyte) gets its interim answer
//! at the first read: a handler that refuses the body up front (413) answers without asking
//! for it.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use crate::http::head::{Head, Version};
use crate::http::input::Input;
use crate::refusal::{Reason, Refusal};

/// Longest chunk-size line (size, extensions, CRLF) accepted. Extensions are ignored; nobody
/// pushing frames sends any.
const MAX_CHUNK_LINE: usize = 1024;
/// Most bytes of trailer fields accepted after the last chunk (they are read and dropped).
const MAX_TRAILER_BYTES: usize = 4 * 1024;

/// How the body of a request is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
}

impl Framing {
    /// The framing a head declares, or the 400 that refuses it.
    pub fn of(head: &Head) -> Result<Framing, Refusal> {
        let mut codings = head
            .values("Transfer-Encoding")
            .flat_map(|value| value.split(|&byte| byte == b','))
            .map(<[u8]>::trim_ascii)
            .filter(|coding| !coding.is_empty());
        let lengths: Vec<&[u8]> = head
            .values("Content-Length")
            .flat_map(|value| value.split(|&byte| byte == b','))
            .map(<[u8]>::trim_ascii)
            .collect();
        let bad = |message: &'static str| Err(Refusal::new(Reason::BadRequest, message));
        if let Some(first) = codings.next() {
            if !lengths.is_empty() {
                return bad("Transfer-Encoding and Content-Length together");
            }
            if head.version() == Version::Http10 {
                return bad("Transfer-Encoding on an HTTP/1.0 request");
            }
            if !first.eq_ignore_ascii_case(b"chunked") || codings.next().is_some() {
                return bad("only Transfer-Encoding: chunked is supported");
            }
            return Ok(Framing::Chunked);
        }
        if head.values("Transfer-Encoding").next().is_some() {
            return bad("empty Transfer-Encoding");
        }
        let Some(first) = lengths.first() else {
            return Ok(Framing::None);
        };
        if lengths.iter().any(|length| length != first) {
            return bad("Content-Length values differ");
        }
        match parse_length(first) {
            Some(0) => Ok(Framing::None),
            Some(length) => Ok(Framing::Length(length)),
            None => bad("Content-Length is not a number"),
        }
    }
}

/// Digits only (no sign, no spaces inside), within `u64`.
fn parse_length(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |total, &digit| {
        let value = char::from(digit).to_digit(10)?;
        total.checked_mul(10)?.checked_add(u64::from(value))
    })
}

/// Where a chunked body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    SizeLine,
    Data(u64),
    DataEnd,
    Trailers(usize),
    Done,
}

/// Where a body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length(u64),
    Chunked(Chunk),
    /// A read failed or the framing broke: nothing more can be read, and the connection
    /// closes after the answer.
    Broken,
}

/// The body of the request being served.
pub struct Body<'c> {
    input: &'c mut Input,
    state: State,
    framing: Framing,
    deadline: Instant,
    /// Send `100 Continue` before the first read.
    continue_pending: bool,
}

impl<'c> Body<'c> {
    pub fn new(
        input: &'c mut Input,
        framing: Framing,
        timeout: Duration,
        expects_continue: bool,
    ) -> Body<'c> {
        let state = match framing {
            Framing::None => State::Length(0),
            Framing::Length(length) => State::Length(length),
            Framing::Chunked => State::Chunked(Chunk::SizeLine),
        };
        Body {
            input,
            state,
            framing,
            deadline: Instant::now() + timeout,
            continue_pending: expects_continue && framing != Framing::None,
        }
    }

    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// The declared `Content-Length`, if the body has one.
    pub fn declared_length(&self) -> Option<u64> {
        match self.framing {
            Framing::Length(length) => Some(length),
            _ => None,
        }
    }

    /// Whether the body was read to its end, so that the connection can carry another request.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Length(0) | State::Chunked(Chunk::Done))
    }

    /// Gives the rest of the body `timeout` from now (a streaming push earns each frame its
    /// own `--push-timeout`).
    pub fn extend_deadline(&mut self, timeout: Duration) {
        self.deadline = Instant::now() + timeout;
    }

    fn read_chunked(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            let State::Chunked(chunk) = self.state else {
                return Ok(0);
            };
            match chunk {
                Chunk::Done => return Ok(0),
                Chunk::SizeLine => match chunk_line(self.input.buffered(), MAX_CHUNK_LINE)? {
                    None => self.fill()?,
                    Some(end) => {
                        let line = &self.input.buffered()[..end + 2];
                        // httparse reads a line without digits (`\r\n`, `;x\r\n`) as size 0.
                        let parsed = match line.first() {
                            Some(digit) if digit.is_ascii_hexdigit() => {
                                httparse::parse_chunk_size(line)
                            }
                            _ => Err(httparse::InvalidChunkSize),
                        };
                        let Ok(httparse::Status::Complete((used, size))) = parsed else {
                            return Err(invalid("malformed chunk size"));
                        };
                        self.input.consume(used);
                        self.state = State::Chunked(if size == 0 {
                            Chunk::Trailers(0)
                        } else {
                            Chunk::Data(size)
                        });
                    }
                },
                Chunk::Data(left) => {
                    let wanted = out.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let count = self.input.read_into(&mut out[..wanted], self.deadline)?;
                    if count == 0 {
                        return Err(cut_off());
                    }
                    let left = left - count as u64;
                    self.state = State::Chunked(if left == 0 {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left)
                    });
                    return Ok(count);
                }
                Chunk::DataEnd => {
                    while self.input.buffered().len() < 2 {
                        self.fill()?;
                    }
                    if &self.input.buffered()[..2] != b"\r\n" {
                        return Err(invalid("chunk data longer than its size"));
                    }
                    self.input.consume(2);
                    self.state = State::Chunked(Chunk::SizeLine);
                }
                Chunk::Trailers(seen) => {
                    let room = MAX_TRAILER_BYTES.saturating_sub(seen);
                    match chunk_line(self.input.buffered(), room)? {
                        None => self.fill()?,
                        Some(0) => {
                            self.input.consume(2);
                            self.state = State::Chunked(Chunk::Done);
                        }
                        Some(end) => {
                            // Trailer fields are read and dropped, but only if they are fields:
                            // a request line among them is a smuggling attempt.
                            let line = &self.input.buffered()[..end];
                            let name = line.split(|&byte| byte == b':').next().unwrap_or_default();
                            if name.len() == line.len()
                                || name.is_empty()
                                || !name.iter().all(|&byte| byte.is_ascii_graphic())
                            {
                                return Err(invalid("malformed trailer field"));
                            }
                            self.input.consume(end + 2);
                            self.state = State::Chunked(Chunk::Trailers(seen + end + 2));
                        }
                    }
                }
            }
        }
    }

    /// Reads more into the connection's buffer; the end of the stream here is a cut-off body.
    fn fill(&mut self) -> io::Result<()> {
        match self.input.fill(self.deadline)? {
            0 => Err(cut_off()),
            _ => Ok(()),
        }
    }

    fn send_continue(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.continue_pending) && !self.is_finished() {
            self.input
                .wire()
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        Ok(())
    }
}

impl Read for Body<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() || self.is_finished() {
            return Ok(0);
        }
        if self.state == State::Broken {
            return Err(invalid("the body could not be read"));
        }
        let result = self.send_continue().and_then(|()| match self.state {
            State::Length(left) => {
                let wanted = out.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                match self.input.read_into(&mut out[..wanted], self.deadline)? {
                    0 => Err(cut_off()),
                    count => {
                        self.state = State::Length(left - count as u64);
                        Ok(count)
                    }
                }
            }
            _ => self.read_chunked(out),
        });
        if result.is_err() {
            self.state = State::Broken;
        }
        result
    }
}

/// Where the CRLF ending the line at the start of `buffered` is: `Ok(None)` until it has
/// arrived. A line longer than `limit`, or with a bare CR, a bare LF or another control
/// character in it, is refused: the body's framing must not depend on how a reader treats
/// them.
fn chunk_line(buffered: &[u8], limit: usize) -> io::Result<Option<usize>> {
    let scanned = &buffered[..buffered.len().min(limit)];
    match scanned
        .iter()
        .position(|&byte| byte.is_ascii_control() && byte != b'\t')
    {
        Some(at) if scanned[at] == b'\r' && scanned.get(at + 1) == Some(&b'\n') => Ok(Some(at)),
        // A CR at the very end: its LF may be on its way.
        Some(at) if scanned[at] == b'\r' && at + 1 == scanned.len() && scanned.len() < limit => {
            Ok(None)
        }
        Some(_) => Err(invalid("a control character in a chunk line")),
        None if scanned.len() >= limit => Err(invalid("chunk line too long")),
        None => Ok(None),
    }
}

fn invalid(message: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

fn cut_off() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the client closed the connection",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framing(headers: &str) -> Result<Framing, u16> {
        let text = format!("POST /pump_push/c HTTP/1.1\r\nHost: a\r\n{headers}\r\n");
        let (head, _) = Head::parse(text.as_bytes()).unwrap().unwrap();
        Framing::of(&head).map_err(|refusal| refusal.status())
    }

    #[test]
    fn framing_follows_rfc_9112() {
        assert_eq!(framing(""), Ok(Framing::None));
        assert_eq!(framing("Content-Length: 0\r\n"), Ok(Framing::None));
        assert_eq!(framing("Content-Length: 12\r\n"), Ok(Framing::Length(12)));
        assert_eq!(
            framing("Content-Length: 12\r\nContent-Length: 12\r\n"),
            Ok(Framing::Length(12))
        );
        assert_eq!(
            framing("Content-Length: 1099511627776\r\n"),
            Ok(Framing::Length(1 << 40))
        );
        assert_eq!(
            framing("Transfer-Encoding: chunked\r\n"),
            Ok(Framing::Chunked)
        );
        assert_eq!(
            framing("Transfer-Encoding: Chunked\r\n"),
            Ok(Framing::Chunked)
        );
        for refused in [
            "Content-Length: 12\r\nContent-Length: 13\r\n",
            "Content-Length: 12, 13\r\n",
            "Content-Length: -1\r\n",
            "Content-Length: +5\r\n",
            "Content-Length: 1 2\r\n",
            "Content-Length: 0x10\r\n",
            "Content-Length: \r\n",
            "Content-Length: 99999999999999999999\r\n",
            "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
            "Transfer-Encoding: gzip, chunked\r\n",
            "Transfer-Encoding: chunked, gzip\r\n",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            "Transfer-Encoding: identity\r\n",
            "Transfer-Encoding: \r\n",
        ] {
            assert_eq!(framing(refused), Err(400), "{refused}");
        }
        let text = "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n";
        let (head, _) = Head::parse(text.as_bytes()).unwrap().unwrap();
        assert!(Framing::of(&head).is_err());
    }

    #[test]
    fn lengths_are_digits_within_u64() {
        assert_eq!(parse_length(b"0"), Some(0));
        assert_eq!(parse_length(b"18446744073709551615"), None);
        assert_eq!(
            parse_length(b"9999999999999999999"),
            Some(9_999_999_999_999_999_999)
        );
        assert_eq!(parse_length(b"1a"), None);
    }
}
