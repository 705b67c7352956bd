//! One request on a connection of its own, and exactly what came back.
//!
//! The attacks on the relay's HTTP layer need more than a status: whether the connection was
//! closed after the answer, and whether anything followed it. A second answer on a connection
//! that carried one request means the relay parsed bytes it should have treated as a body, or
//! dropped, as a request of their own (request smuggling); a header line nobody asked for means
//! text from the request broke out of the head (CR/LF injection). So the answer is read by its
//! own framing (the head, then `Content-Length` bytes, none for `HEAD`, 1xx, 204 and 304,
//! chunks, or everything until the close), its header lines are kept as sent, and the
//! connection is then watched until a deadline: closed, reset, still open, or more bytes.
//!
//! Requests are sent first, all of them, and read afterwards against one deadline, so that
//! hundreds of them cost one wait rather than one each. Every read has a timeout derived from
//! that deadline.
//!
//! Over HTTPS the request goes out and the answer comes back through a finished handshake; the
//! relay closing without `close_notify` counts as a close. A connection the relay refuses
//! before its handshake finishes (over its connection cap, where plain HTTP would get a 503 it
//! cannot send in clear) is an exchange that [`Exchange::Failed`] at `connect`.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use crate::http::{self, Connection, Target};

/// Longest answer head read; the relay's are a few hundred bytes.
const MAX_HEAD: usize = 64 * 1024;
/// Longest answer body read; the biggest the attacks ask for is a snapshot or a gzipped page.
const MAX_BODY: usize = 8 * 1024 * 1024;
/// What is kept of bytes that followed an answer, for the report.
const MAX_AFTER: usize = 4 * 1024;
/// The shortest wait for a read, even past the deadline: enough for bytes or a close that have
/// already arrived to be seen.
const LAST_LOOK: Duration = Duration::from_millis(10);

/// What the connection did after the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum After {
    /// The relay closed it.
    Closed,
    /// The relay reset it (closing with our bytes unread does that).
    Reset,
    /// Still open at the deadline, with nothing more sent.
    Open,
    /// More bytes came: the start of them.
    More(Vec<u8>),
    /// The answer is an endless stream; nothing after its head was read.
    Streaming,
}

/// A complete answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// Header lines exactly as sent, cut at CRLF only (a bare CR or LF stays inside a line).
    pub lines: Vec<Vec<u8>>,
    pub body: Vec<u8>,
    pub after: After,
}

impl Answer {
    /// The name of every header line (the bytes before its colon, or the whole line if it
    /// has none), as sent.
    pub fn names(&self) -> Vec<String> {
        self.lines
            .iter()
            .map(|line| {
                let name = match line.iter().position(|&byte| byte == b':') {
                    Some(colon) => &line[..colon],
                    None => &line[..],
                };
                String::from_utf8_lossy(name).into_owned()
            })
            .collect()
    }

    /// The value of the first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<String> {
        self.lines.iter().find_map(|line| {
            let colon = line.iter().position(|&byte| byte == b':')?;
            let (key, value) = line.split_at(colon);
            key.eq_ignore_ascii_case(name.as_bytes())
                .then(|| String::from_utf8_lossy(&value[1..]).trim().to_string())
        })
    }

    /// Whether the connection ended right after this answer.
    pub fn then_closed(&self) -> bool {
        matches!(self.after, After::Closed | After::Reset)
    }
}

/// Everything one connection gave back.
#[derive(Debug, Clone)]
pub enum Exchange {
    Answered(Answer),
    /// Closed before a single byte of an answer.
    Closed,
    /// Reset before a single byte of an answer.
    Reset,
    /// Nothing by the deadline.
    NoAnswer,
    /// Bytes that are not an HTTP/1.x answer, or an answer cut off: what was wrong.
    Broken(String),
    /// The connection could not be opened or the request not sent: why.
    Failed(String),
}

impl Exchange {
    pub fn answer(&self) -> Option<&Answer> {
        match self {
            Exchange::Answered(answer) => Some(answer),
            _ => None,
        }
    }

    /// Whether this is an answer of `status` after which the relay closed the connection.
    pub fn is_then_closed(&self, status: u16) -> bool {
        self.answer()
            .is_some_and(|answer| answer.status == status && answer.then_closed())
    }
}

/// One word or two for tallies: `505 closed`, `200 open`, `400 then more: "HTTP/1.1 200 OK"`,
/// `reset`, `no answer`.
impl fmt::Display for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exchange::Answered(answer) => {
                write!(f, "{}", answer.status)?;
                match &answer.after {
                    After::Closed => f.write_str(" closed"),
                    After::Reset => f.write_str(" reset"),
                    After::Open => f.write_str(" open"),
                    After::Streaming => f.write_str(" streaming"),
                    After::More(bytes) => {
                        let first = bytes.split(|&byte| byte == b'\n').next().unwrap_or(bytes);
                        let text: String = String::from_utf8_lossy(first)
                            .trim_end()
                            .chars()
                            .take(40)
                            .collect();
                        write!(f, " then more: `{}`", text.escape_default())
                    }
                }
            }
            Exchange::Closed => f.write_str("closed"),
            Exchange::Reset => f.write_str("reset"),
            Exchange::NoAnswer => f.write_str("no answer"),
            Exchange::Broken(why) => write!(f, "broken: {why}"),
            Exchange::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

/// Exchanges counted by their [`Display`](fmt::Display) text: `505 closed ×300`.
pub fn tally<'a>(exchanges: impl IntoIterator<Item = &'a Exchange>) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for exchange in exchanges {
        *counts.entry(exchange.to_string()).or_default() += 1;
    }
    counts
        .iter()
        .map(|(what, count)| format!("{what} ×{count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A request that has gone out and whose answer has not been read yet.
pub struct Pending {
    stream: Result<Connection, String>,
    head_only: bool,
}

/// Connects and sends `request`. A relay that closes while the bytes go out (it refused what
/// it had read so far) may still have answered, so only a failure to connect or a write that
/// timed out ends the exchange here. `head_only` says the request was a `HEAD`, whose answer
/// has no body whatever its headers say.
pub fn send(target: &Target, request: &[u8], head_only: bool) -> Pending {
    let stream = match http::connect(target) {
        Ok(mut stream) => match stream.write_all(request).and_then(|()| stream.flush()) {
            Ok(()) => Ok(stream),
            Err(error) if is_timeout(&error) => Err("stalled while sending".to_string()),
            Err(_) => Ok(stream),
        },
        Err(error) => Err(format!("connect {}", http::failure_kind(&error))),
    };
    Pending { stream, head_only }
}

impl Pending {
    /// Reads the answer and watches the connection until `deadline`.
    pub fn collect(self, deadline: Instant) -> Exchange {
        match self.stream {
            Ok(stream) => read_exchange(stream, self.head_only, deadline),
            Err(why) => Exchange::Failed(why),
        }
    }
}

/// Connections an attack opens at once for exchanges: with the normal load's 20 and up to 100
/// held ones (slow heads), well under the relay's default `--max-connections` of 256, so that
/// every answer is the relay's answer to the request, not its connection cap's 503.
pub const AT_ONCE: usize = 100;

/// [`all_at_once`] for [`AT_ONCE`] requests at a time, each batch with its own `within`; the
/// exchanges in the order of the requests.
pub fn in_batches(
    target: &Target,
    requests: &[(Vec<u8>, bool)],
    within: Duration,
) -> Vec<Exchange> {
    requests
        .chunks(AT_ONCE)
        .flat_map(|batch| all_at_once(target, batch, within))
        .collect()
}

/// Sends every request on a connection of its own, then reads every answer, all within
/// `within` of the last request going out.
pub fn all_at_once(
    target: &Target,
    requests: &[(Vec<u8>, bool)],
    within: Duration,
) -> Vec<Exchange> {
    let pending: Vec<Pending> = requests
        .iter()
        .map(|(bytes, head_only)| send(target, bytes, *head_only))
        .collect();
    let deadline = Instant::now() + within;
    pending.into_iter().map(|p| p.collect(deadline)).collect()
}

/// Reads one answer from `stream` and what follows it, giving up at `deadline`.
pub fn read_exchange(stream: Connection, head_only: bool, deadline: Instant) -> Exchange {
    let mut wire = Wire {
        stream,
        buffer: Vec::new(),
        deadline,
    };
    let head_end = loop {
        if let Some(end) = find(&wire.buffer, b"\r\n\r\n") {
            break end;
        }
        if wire.buffer.len() > MAX_HEAD {
            return Exchange::Broken(format!("an answer head over {MAX_HEAD} bytes"));
        }
        match wire.fill() {
            Fill::Got => {}
            Fill::Eof if wire.buffer.is_empty() => return Exchange::Closed,
            Fill::Reset if wire.buffer.is_empty() => return Exchange::Reset,
            Fill::Timeout if wire.buffer.is_empty() => return Exchange::NoAnswer,
            other => {
                return Exchange::Broken(format!(
                    "{} inside the answer head: {:?}",
                    other.word(),
                    preview(&wire.buffer)
                ))
            }
        }
    };
    let head: Vec<u8> = wire.buffer.drain(..head_end + 4).collect();
    // Split on CRLF only, so that a bare CR or LF inside a header line stays visible in it.
    let mut lines = split_crlf(&head[..head_end]).into_iter();
    let status_line = String::from_utf8_lossy(&lines.next().unwrap_or_default()).into_owned();
    let status = match status_line.split(' ').collect::<Vec<_>>()[..] {
        [version, code, ..] if version.starts_with("HTTP/1.") => code.parse::<u16>().ok(),
        _ => None,
    };
    let Some(status) = status else {
        return Exchange::Broken(format!("not an HTTP/1.x answer: {status_line:?}"));
    };
    let mut answer = Answer {
        status,
        lines: lines.collect(),
        body: Vec::new(),
        after: After::Open,
    };
    let no_body = head_only || status < 200 || status == 204 || status == 304;
    let chunked = answer
        .header("Transfer-Encoding")
        .is_some_and(|coding| coding.to_ascii_lowercase().contains("chunked"));
    let length = answer.header("Content-Length");
    let streaming = answer
        .header("Content-Type")
        .is_some_and(|kind| kind.to_ascii_lowercase().starts_with("multipart/"));
    let body = if no_body {
        Ok(Vec::new())
    } else if streaming && length.is_none() {
        answer.after = After::Streaming;
        return Exchange::Answered(answer);
    } else if chunked {
        wire.chunked_body()
    } else if let Some(length) = length {
        match length.parse::<usize>() {
            Ok(length) if length <= MAX_BODY => wire.exact(length),
            _ => Err(format!("answer with Content-Length {length:?}")),
        }
    } else {
        // Neither: the body runs to the close, which is then the answer's end.
        match wire.until_close() {
            Ok((body, after)) => {
                answer.body = body;
                answer.after = after;
                return Exchange::Answered(answer);
            }
            Err(why) => Err(why),
        }
    };
    match body {
        Ok(body) => answer.body = body,
        Err(why) => return Exchange::Broken(format!("{} answer: {why}", answer.status)),
    }
    answer.after = wire.after();
    Exchange::Answered(answer)
}

fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// `bytes` cut at every CRLF.
fn split_crlf(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    let mut rest = bytes;
    while let Some(end) = find(rest, b"\r\n") {
        lines.push(rest[..end].to_vec());
        rest = &rest[end + 2..];
    }
    lines.push(rest.to_vec());
    lines
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn preview(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(60)]).into_owned()
}

/// The connection, what has been read from it and not used yet, and the deadline.
struct Wire {
    stream: Connection,
    buffer: Vec<u8>,
    deadline: Instant,
}

enum Fill {
    Got,
    Eof,
    Reset,
    Timeout,
    Error(io::Error),
}

impl Fill {
    fn word(&self) -> String {
        match self {
            Fill::Got => "bytes".to_string(),
            Fill::Eof => "closed".to_string(),
            Fill::Reset => "reset".to_string(),
            Fill::Timeout => "nothing more by the deadline".to_string(),
            Fill::Error(error) => format!("error {error}"),
        }
    }
}

impl Wire {
    /// Reads once more into the buffer, waiting at most until the deadline.
    fn fill(&mut self) -> Fill {
        let wait = self
            .deadline
            .saturating_duration_since(Instant::now())
            .max(LAST_LOOK);
        if let Err(error) = self.stream.socket().set_read_timeout(Some(wait)) {
            return Fill::Error(error);
        }
        let mut chunk = [0u8; 16 * 1024];
        loop {
            return match self.stream.read(&mut chunk) {
                Ok(0) => Fill::Eof,
                // rustls's word for a close without `close_notify`.
                Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => Fill::Eof,
                Ok(count) => {
                    self.buffer.extend_from_slice(&chunk[..count]);
                    Fill::Got
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) if is_timeout(&error) => Fill::Timeout,
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                    ) =>
                {
                    Fill::Reset
                }
                Err(error) => Fill::Error(error),
            };
        }
    }

    /// Exactly `length` bytes.
    fn exact(&mut self, length: usize) -> Result<Vec<u8>, String> {
        while self.buffer.len() < length {
            match self.fill() {
                Fill::Got => {}
                other => {
                    return Err(format!(
                        "{} after {} of {length} body bytes",
                        other.word(),
                        self.buffer.len()
                    ))
                }
            }
        }
        Ok(self.buffer.drain(..length).collect())
    }

    /// One line without its CRLF.
    fn line(&mut self) -> Result<Vec<u8>, String> {
        loop {
            if let Some(end) = find(&self.buffer, b"\r\n") {
                let line = self.buffer[..end].to_vec();
                self.buffer.drain(..end + 2);
                return Ok(line);
            }
            if self.buffer.len() > MAX_HEAD {
                return Err("a chunk-size line without end".to_string());
            }
            match self.fill() {
                Fill::Got => {}
                other => return Err(format!("{} inside a chunk-size line", other.word())),
            }
        }
    }

    fn chunked_body(&mut self) -> Result<Vec<u8>, String> {
        let mut body = Vec::new();
        loop {
            let line = self.line()?;
            let text = String::from_utf8_lossy(&line);
            let size = text.split(';').next().unwrap_or_default().trim();
            let size =
                usize::from_str_radix(size, 16).map_err(|_| format!("bad chunk size {text:?}"))?;
            if size == 0 {
                // Trailer lines up to the blank one.
                while !self.line()?.is_empty() {}
                return Ok(body);
            }
            if body.len() + size > MAX_BODY {
                return Err(format!("a chunked body over {MAX_BODY} bytes"));
            }
            body.extend(self.exact(size)?);
            if !self.exact(2)?.eq(b"\r\n") {
                return Err("a chunk not followed by CRLF".to_string());
            }
        }
    }

    /// Everything up to the close.
    fn until_close(&mut self) -> Result<(Vec<u8>, After), String> {
        loop {
            if self.buffer.len() > MAX_BODY {
                return Err(format!("a body over {MAX_BODY} bytes without a length"));
            }
            match self.fill() {
                Fill::Got => {}
                Fill::Eof => return Ok((std::mem::take(&mut self.buffer), After::Closed)),
                Fill::Reset => return Ok((std::mem::take(&mut self.buffer), After::Reset)),
                Fill::Timeout => return Ok((std::mem::take(&mut self.buffer), After::Open)),
                Fill::Error(error) => return Err(format!("error {error}")),
            }
        }
    }

    /// What the connection does after the answer, watched until the deadline.
    fn after(&mut self) -> After {
        if !self.buffer.is_empty() {
            return After::More(self.more());
        }
        match self.fill() {
            Fill::Got => After::More(self.more()),
            Fill::Eof => After::Closed,
            Fill::Reset => After::Reset,
            Fill::Timeout => After::Open,
            Fill::Error(_) => After::Reset,
        }
    }

    /// The start of whatever followed the answer, with a last look for the rest of its line.
    fn more(&mut self) -> Vec<u8> {
        if !self.buffer.contains(&b'\n') {
            let _ = self.fill();
        }
        self.buffer.truncate(MAX_AFTER);
        std::mem::take(&mut self.buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::thread;

    /// Serves `reply` to one connection after reading its request head, then closes it (or
    /// keeps it open for a while when `linger` is set).
    fn replying(reply: &'static [u8], linger: bool) -> (TcpStream, thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let server = thread::spawn(move || {
            let (mut connection, _) = listener.accept().unwrap();
            connection
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            let _ = connection.read(&mut [0u8; 1024]);
            connection.write_all(reply).unwrap();
            if linger {
                let _ = connection.read(&mut [0u8; 1]);
            }
        });
        (client, server)
    }

    fn exchange_with(reply: &'static [u8], head_only: bool, linger: bool) -> Exchange {
        let (mut client, server) = replying(reply, linger);
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let deadline = Instant::now() + Duration::from_millis(300);
        let exchange = read_exchange(Connection::Plain(client), head_only, deadline);
        server.join().unwrap();
        exchange
    }

    #[test]
    fn an_answer_then_a_close() {
        let exchange = exchange_with(
            b"HTTP/1.1 505 HTTP Version Not Supported\r\nContent-Length: 3\r\n\r\nno\n",
            false,
            false,
        );
        assert!(exchange.is_then_closed(505), "{exchange}");
        assert_eq!(exchange.to_string(), "505 closed");
        let answer = exchange.answer().unwrap();
        assert_eq!(answer.body, b"no\n");
        assert_eq!(answer.names(), ["Content-Length"]);
    }

    #[test]
    fn a_second_answer_is_seen() {
        let exchange = exchange_with(
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
            false,
            false,
        );
        assert_eq!(exchange.to_string(), "400 then more: `HTTP/1.1 200 OK`");
    }

    #[test]
    fn chunked_and_headless_answers() {
        let exchange = exchange_with(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            false,
            false,
        );
        assert_eq!(exchange.answer().unwrap().body, b"ok");
        assert!(exchange.is_then_closed(200));
        let exchange = exchange_with(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", true, true);
        assert_eq!(exchange.to_string(), "200 open");
        let exchange = exchange_with(b"HTTP/1.1 413 Too Large\r\n\r\nbig", false, false);
        assert_eq!(exchange.answer().unwrap().body, b"big");
    }

    #[test]
    fn injected_lines_keep_their_names() {
        let exchange = exchange_with(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nSet-Cookie: a=1\r\nbare\r\n\r\n",
            false,
            false,
        );
        assert_eq!(
            exchange.answer().unwrap().names(),
            ["Content-Length", "Set-Cookie", "bare"]
        );
        let exchange = exchange_with(
            b"HTTP/1.1 404 Not Found\r\nX-Path: a\nSet-Cookie: b\r\nContent-Length: 0\r\n\r\n",
            false,
            false,
        );
        let answer = exchange.answer().unwrap();
        assert_eq!(answer.names(), ["X-Path", "Content-Length"]);
        assert_eq!(answer.lines[0], b"X-Path: a\nSet-Cookie: b");
    }

    #[test]
    fn nothing_and_garbage() {
        assert_eq!(exchange_with(b"", false, false).to_string(), "closed");
        assert_eq!(exchange_with(b"", false, true).to_string(), "no answer");
        assert!(matches!(
            exchange_with(b"SSH-2.0-x\r\n\r\n", false, false),
            Exchange::Broken(_)
        ));
    }
}
