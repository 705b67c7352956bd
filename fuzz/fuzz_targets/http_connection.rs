//! Fuzzes the HTTP/1.1 layer whole: the head parser and the body readers, driven through
//! `connection::serve` over a scripted wire, so that every input is a complete connection.
//!
//! Every input is run in two ways.
//!
//! Random bytes. The first byte `c` says how the rest is cut into reads: the next `c % 8`
//! bytes are piece lengths, used in turn (a length of 0 is a read that times out, three times
//! at most, and counts as 1 after that), and with `c & 8` the client goes idle at the end
//! instead of closing; with no lengths the stream is one read. A service answers whatever heads come through, reading the
//! body of targets starting `/read`, ten bytes of it for `/some`, writing its own endless
//! answer for `/stream`, and answering `204` or a large body for `/empty` and `/big`; it echoes the target and the `User-Agent` into its answer's headers. Checked:
//! - no panic, and the connection ends without reading on and on past the end of the stream;
//! - the output is a sequence of answers, each `HTTP/1.0 ` or `HTTP/1.1 `, a 3-digit status
//!   and a space, a head whose every line ends in CRLF with no other CR or LF, and a body of
//!   exactly its `Content-Length` (none for `HEAD`, `1xx` and `204`);
//! - one final answer per request the service saw, in order, in the request's version, plus
//!   at most one refusal from the layer itself, last and with the refusal's status; nothing
//!   after an answer that says `Connection: close`, nor after an endless one; `100 Continue`
//!   only to HTTP/1.1 requests.
//!
//! Same requests however split. The input also describes 1 to 4 valid HTTP/1.1 requests
//! (method, target, `Host`, and no body, a `Content-Length` body or a chunked one with
//! extensions and trailers, sometimes `Expect: 100-continue`), written out as one stream. The
//! connection runs twice, on the stream as one read and cut into random non-empty pieces,
//! with a service that reads every body. Checked: both runs see exactly the requests that were
//! written, in order, with their bodies; both write the same answers (but for `Date`); each
//! answer is the one expected, with `100 Continue` exactly where a body was announced with
//! `Expect`; and every byte of the stream is read.

#![no_main]

use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use streampump::http::connection::{serve, Load, Reply, Request, Service, Timeouts};
use streampump::http::head::Version;
use streampump::http::input::Wire;
use streampump::http::response::{Payload, Response};
use streampump::http::script::Script;
use streampump::refusal::Refusal;
use streampump::relay::mjpeg;

/// Long enough never to matter: the script never blocks, and an empty piece is a timeout.
const TIMEOUTS: Timeouts = Timeouts {
    request: Duration::from_secs(3600),
    body: Duration::from_secs(3600),
};

/// Reads allowed once the stream has ended: the layer must notice the end and stop.
const MAX_READS_AFTER_END: usize = 8;

fuzz_target!(|data: &[u8]| {
    random_bytes(data);
    same_requests_however_split(data);
});

/// A scripted wire that also counts the reads asked of it after the script ran out.
struct Watched {
    script: Script,
    reads_after_end: AtomicUsize,
}

impl Watched {
    fn new(pieces: Vec<Vec<u8>>) -> Arc<Watched> {
        Arc::new(Watched {
            script: Script::new(pieces),
            reads_after_end: AtomicUsize::new(0),
        })
    }
}

impl Wire for Watched {
    fn read_by(&self, out: &mut [u8], deadline: Instant) -> io::Result<usize> {
        if self.script.unread() == 0 {
            let count = self.reads_after_end.fetch_add(1, Ordering::Relaxed) + 1;
            assert!(
                count <= MAX_READS_AFTER_END,
                "the connection keeps reading after the end of the stream"
            );
        }
        self.script.read_by(out, deadline)
    }

    fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        self.script.write_all(bytes)
    }

    fn shutdown(&self, how: Shutdown) {
        self.script.shutdown(how);
    }

    fn abort(&self) {
        self.script.abort();
    }
}

/// Runs one connection over `pieces`; returns what was written and the pieces left unread.
fn run(pieces: Vec<Vec<u8>>, service: &dyn Service) -> (Vec<u8>, usize) {
    let wire = Watched::new(pieces);
    let peer = SocketAddr::from(([127, 0, 0, 1], 9));
    serve(
        wire.clone(),
        peer,
        service,
        TIMEOUTS,
        &Arc::new(Load::default()),
    );
    (wire.script.written(), wire.script.unread())
}

// ---------------------------------------------------------------------------------------------
// Random bytes

/// What the service saw of one request, to know the shape of its answer.
#[derive(Debug, Clone, Copy)]
struct Seen {
    version: Version,
    head_only: bool,
    streamed: bool,
}

#[derive(Default)]
struct Anything {
    seen: Mutex<Vec<Seen>>,
    refusals: Mutex<Vec<u16>>,
}

impl Service for Anything {
    fn serve(&self, request: &mut Request<'_>) -> Reply {
        let target = request.target().to_string();
        let version = request.version();
        let head_only = request.method() == "HEAD";
        let streamed = target.starts_with("/stream");
        self.seen.lock().unwrap().push(Seen {
            version,
            head_only,
            streamed,
        });

        let mut body = Vec::new();
        let read = if target.starts_with("/read") {
            request.body().read_to_end(&mut body).map(|_| ())
        } else if target.starts_with("/some") {
            request.body().take(10).read_to_end(&mut body).map(|_| ())
        } else {
            Ok(())
        };
        if let Err(error) = read {
            return Reply::Answer(Response::text(400, error.to_string()));
        }

        if streamed {
            let head = mjpeg::response_head(version == Version::Http10, head_only, "");
            let mut writer = request.writer();
            let _ = io::Write::write_all(&mut writer, head.as_bytes());
            if !head_only {
                let part = mjpeg::Part::from_jpeg(&[0xFF, 0xD8, 0xFF, 0xD9], None);
                let _ = io::Write::write_all(&mut writer, part.buffer());
            }
            return Reply::Streamed;
        }

        let mut response = if target.starts_with("/empty") {
            Response::new(204, Payload::Empty)
        } else if target.starts_with("/big") {
            Response::new(200, Payload::Owned(vec![b'x'; 20_000]))
        } else {
            let text = format!("{} {} {}", request.method(), target, body.len());
            Response::text(200, text)
        };
        response.add_header("X-Target", &target);
        if let Some(agent) = request.header("User-Agent") {
            response.add_header("X-Agent", agent);
        }
        Reply::Answer(response)
    }

    fn refused(&self, refusal: &Refusal, _: SocketAddr) {
        self.refusals.lock().unwrap().push(refusal.status());
    }
}

/// Cuts `data` into reads as its first bytes say (see the module docs).
fn pieces_of(data: &[u8]) -> Vec<Vec<u8>> {
    let Some((&control, rest)) = data.split_first() else {
        return Vec::new();
    };
    let count = usize::from(control % 8).min(rest.len());
    let (lengths, mut stream) = rest.split_at(count);
    let mut pieces = Vec::new();
    if lengths.is_empty() {
        pieces.push(stream.to_vec());
    } else {
        let mut timeouts = 0;
        for &length in lengths.iter().cycle() {
            if stream.is_empty() {
                break;
            }
            if length == 0 && timeouts < 3 {
                timeouts += 1;
                pieces.push(Vec::new());
                continue;
            }
            let (piece, after) = stream.split_at(usize::from(length.max(1)).min(stream.len()));
            pieces.push(piece.to_vec());
            stream = after;
        }
    }
    if control & 8 != 0 {
        pieces.push(Vec::new());
    }
    pieces
}

fn random_bytes(data: &[u8]) {
    let service = Anything::default();
    let (written, _) = run(pieces_of(data), &service);
    let seen = service.seen.into_inner().unwrap();
    let refusals = service.refusals.into_inner().unwrap();
    assert!(refusals.len() <= 1, "refused {refusals:?}");
    check_answers(&written, &seen, refusals.first().copied());
}

/// One answer's head, checked line by line.
struct AnswerHead<'a> {
    version: &'a [u8],
    status: u16,
    /// Bytes of the head, blank line included.
    length: usize,
    content_length: Option<usize>,
    closes: bool,
}

fn parse_answer_head(bytes: &[u8]) -> AnswerHead<'_> {
    let shown = || String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
    assert!(
        bytes.starts_with(b"HTTP/1.0 ") || bytes.starts_with(b"HTTP/1.1 "),
        "an answer starts with {:?}",
        shown()
    );
    let status = &bytes[9..bytes.len().min(13)];
    assert!(
        status.len() == 4 && status[..3].iter().all(u8::is_ascii_digit) && status[3] == b' ',
        "no 3-digit status in {:?}",
        shown()
    );
    let status = status[..3]
        .iter()
        .fold(0u16, |total, &digit| total * 10 + u16::from(digit - b'0'));
    let end = bytes
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("an answer head without its blank line: {:?}", shown()));
    let mut content_length = None;
    let mut closes = false;
    let mut lines = &bytes[..end];
    loop {
        let (line, next) = match lines.windows(2).position(|pair| pair == b"\r\n") {
            Some(at) => (&lines[..at], Some(&lines[at + 2..])),
            None => (lines, None),
        };
        assert!(
            !line.contains(&b'\r') && !line.contains(&b'\n'),
            "a bare CR or LF inside a head line: {:?}",
            shown()
        );
        let text = String::from_utf8_lossy(line);
        if let Some(value) = text.strip_prefix("Content-Length: ") {
            assert!(content_length.is_none(), "two lengths: {:?}", shown());
            content_length = Some(value.parse().unwrap_or_else(|_| panic!("{:?}", shown())));
        }
        if text == "Connection: close" {
            closes = true;
        }
        match next {
            Some(next) => lines = next,
            None => break,
        }
    }
    AnswerHead {
        version: &bytes[..8],
        status,
        length: end + 4,
        content_length,
        closes,
    }
}

/// Walks the output answer by answer against what the service saw (see the module docs).
fn check_answers(written: &[u8], seen: &[Seen], refusal: Option<u16>) {
    let mut rest = written;
    let mut finals = 0;
    while !rest.is_empty() {
        let head = parse_answer_head(rest);
        if head.status == 100 {
            let request = seen.get(finals).expect("100 Continue to no request");
            assert_eq!(request.version, Version::Http11, "100 Continue to HTTP/1.0");
            assert_eq!(head.version, b"HTTP/1.1");
            assert_eq!(head.content_length, None);
            rest = &rest[head.length..];
            continue;
        }
        let body_length = match seen.get(finals) {
            Some(request) => {
                assert_eq!(head.version, request.version.as_str().as_bytes());
                if request.streamed {
                    assert!(head.closes, "an endless answer without Connection: close");
                    finals += 1;
                    break;
                }
                if request.head_only {
                    0
                } else {
                    head.content_length.unwrap_or(0)
                }
            }
            None => {
                assert_eq!(finals, seen.len(), "more answers than requests");
                assert_eq!(Some(head.status), refusal, "an answer to no request");
                head.content_length.unwrap_or(0)
            }
        };
        if head.status == 204 || head.status < 200 {
            assert_eq!(head.content_length, None, "a length on a {}", head.status);
        } else {
            assert!(head.content_length.is_some(), "an answer without a length");
        }
        assert!(
            rest.len() >= head.length + body_length,
            "an answer shorter than its length"
        );
        rest = &rest[head.length + body_length..];
        finals += 1;
        if head.closes {
            assert!(rest.is_empty(), "more written after Connection: close");
        }
    }
    assert_eq!(
        finals,
        seen.len() + usize::from(refusal.is_some()),
        "requests without an answer: saw {seen:?}, refused {refusal:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Same requests however split

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"];
/// Characters a target is made of: nothing a parser could take for a separator.
const TARGET_ALPHABET: &[u8] =
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~/?=&%+!$'()*,;:@";
/// Bytes bodies are made of, half the time: line ends, hex digits and pieces of heads.
const BODY_ALPHABET: &[u8] = b"\r\n\r\n0123456789abcdefABCDEF; :GET /HTTP/1.1Host";

/// One request as the service must see it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Heard {
    method: String,
    target: String,
    body: Result<Vec<u8>, String>,
}

/// A request written out, and what it must give.
struct Built {
    heard: Heard,
    bytes: Vec<u8>,
    /// Whether a `100 Continue` must precede its answer.
    continues: bool,
}

/// Small, fast, deterministic: for bytes nobody needs to steer.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

fn pick<'a, T>(u: &mut Unstructured<'_>, choices: &'a [T]) -> &'a T {
    u.choose(choices).unwrap_or(&choices[0])
}

fn int(u: &mut Unstructured<'_>, range: std::ops::RangeInclusive<usize>) -> usize {
    let start = *range.start();
    u.int_in_range(range).unwrap_or(start)
}

fn flag(u: &mut Unstructured<'_>) -> bool {
    u.arbitrary().unwrap_or(false)
}

fn body_bytes(rng: &mut XorShift, length: usize) -> Vec<u8> {
    let from_alphabet = rng.next() & 1 == 0;
    (0..length)
        .map(|_| {
            if from_alphabet {
                BODY_ALPHABET[rng.below(BODY_ALPHABET.len())]
            } else {
                rng.next() as u8
            }
        })
        .collect()
}

/// Most body bytes in one stream: room for a body or two larger than the connection's buffer,
/// and runs that stay fast.
const BODY_BUDGET: usize = 32 * 1024;

/// A body length: mostly small, sometimes more than the connection's buffer holds; small once
/// the input or the budget is used up.
fn body_length(u: &mut Unstructured<'_>, budget: &mut usize) -> usize {
    let length = match int(u, 0..=7) {
        7 => int(u, 9000..=20_000),
        5 | 6 => int(u, 100..=3000),
        _ => int(u, 1..=40),
    };
    let length = if length > *budget {
        length.min(40)
    } else {
        length
    };
    *budget = budget.saturating_sub(length);
    length
}

/// A header name in one of the spellings clients use.
fn spelled(u: &mut Unstructured<'_>, name: &str) -> String {
    match int(u, 0..=3) {
        0 => name.to_ascii_lowercase(),
        1 => name.to_ascii_uppercase(),
        _ => name.to_string(),
    }
}

fn header(u: &mut Unstructured<'_>, name: &str, value: &str) -> String {
    let space = *pick(u, &["", " ", " ", "  ", "\t"]);
    format!("{}:{space}{value}\r\n", spelled(u, name))
}

fn chunk_extension(u: &mut Unstructured<'_>) -> String {
    let space = if flag(u) { " " } else { "" };
    match int(u, 0..=4) {
        0 => format!("{space};ext"),
        1 => format!("{space};name=value"),
        2 => format!("{space};q=\"a quoted; value\""),
        3 => format!("{space};a=1;b"),
        _ => String::new(),
    }
}

fn chunk_size_line(u: &mut Unstructured<'_>, size: usize) -> String {
    let zeros = "0".repeat(int(u, 0..=3).saturating_sub(1));
    let digits = if flag(u) {
        format!("{size:X}")
    } else {
        format!("{size:x}")
    };
    format!("{zeros}{digits}{}\r\n", chunk_extension(u))
}

fn build_request(
    u: &mut Unstructured<'_>,
    rng: &mut XorShift,
    budget: &mut usize,
    last: bool,
) -> Built {
    let method = pick(u, &METHODS).to_string();
    let target_length = int(u, 0..=40);
    let target: String = std::iter::once('/')
        .chain((0..target_length).map(|_| char::from(*pick(u, TARGET_ALPHABET))))
        .collect();

    let host = *pick(u, &["h", "relay:19999", "127.0.0.1"]);
    let mut headers = vec![header(u, "Host", host)];
    let mut body = Vec::new();
    let mut framed_body = Vec::new();
    let mut announced = false;
    match int(u, 0..=2) {
        0 => {}
        1 => {
            body = body_bytes(rng, body_length(u, budget));
            let length = body.len().to_string();
            headers.push(header(u, "Content-Length", &length));
            if flag(u) && flag(u) {
                // The same length twice is one length.
                headers.push(header(u, "Content-Length", &length));
            }
            announced = !body.is_empty();
            framed_body = body.clone();
        }
        _ => {
            let coding = *pick(u, &["chunked", "Chunked", "CHUNKED"]);
            headers.push(header(u, "Transfer-Encoding", coding));
            for _ in 0..int(u, 0..=5) {
                let size = body_length(u, budget).max(1);
                let chunk = body_bytes(rng, size);
                framed_body.extend_from_slice(chunk_size_line(u, size).as_bytes());
                framed_body.extend_from_slice(&chunk);
                framed_body.extend_from_slice(b"\r\n");
                body.extend_from_slice(&chunk);
            }
            framed_body.extend_from_slice(chunk_size_line(u, 0).as_bytes());
            for index in 0..int(u, 0..=2) {
                framed_body
                    .extend_from_slice(format!("X-Trailer-{index}: t{index}\r\n").as_bytes());
            }
            framed_body.extend_from_slice(b"\r\n");
            announced = true;
        }
    }
    let expects = int(u, 0..=3) == 3;
    if expects {
        let expectation = *pick(u, &["100-continue", "100-Continue"]);
        headers.push(header(u, "Expect", expectation));
    }
    match int(u, 0..=4) {
        0 => headers.push(header(u, "Connection", "keep-alive")),
        1 if last => headers.push(header(u, "Connection", "close")),
        2 => headers.push(header(u, "User-Agent", "fuzz/1.0")),
        _ => {}
    }
    // Headers in any order: the framing may come before Host.
    for index in (1..headers.len()).rev() {
        headers.swap(index, int(u, 0..=index));
    }

    let mut bytes = format!("{method} {target} HTTP/1.1\r\n").into_bytes();
    for line in &headers {
        bytes.extend_from_slice(line.as_bytes());
    }
    bytes.extend_from_slice(b"\r\n");
    bytes.extend_from_slice(&framed_body);
    Built {
        heard: Heard {
            method,
            target,
            body: Ok(body),
        },
        bytes,
        continues: expects && announced,
    }
}

#[derive(Default)]
struct Recorder {
    heard: Mutex<Vec<Heard>>,
}

impl Service for Recorder {
    fn serve(&self, request: &mut Request<'_>) -> Reply {
        let mut body = Vec::new();
        let read = request.body().read_to_end(&mut body);
        let heard = Heard {
            method: request.method().to_string(),
            target: request.target().to_string(),
            body: read.map(|_| body).map_err(|error| error.to_string()),
        };
        let response = match &heard.body {
            Err(error) => Response::text(400, error.clone()),
            Ok(_) if heard.method == "DELETE" => Response::new(204, Payload::Empty),
            Ok(body) => {
                let text = format!("{} {} {}", heard.method, heard.target, body.len());
                Response::text(200, text).with_header("X-Target", &heard.target)
            }
        };
        self.heard.lock().unwrap().push(heard);
        Reply::Answer(response)
    }

    fn refused(&self, refusal: &Refusal, _: SocketAddr) {
        panic!("a valid request refused: {refusal}");
    }
}

/// The answers with their `Date` lines taken out (the clock may tick between two runs).
fn without_dates(written: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(written.len());
    let mut rest = written;
    while let Some(at) = rest.windows(8).position(|window| window == b"\r\nDate: ") {
        out.extend_from_slice(&rest[..at]);
        let after = &rest[at + 2..];
        let end = after
            .windows(2)
            .position(|pair| pair == b"\r\n")
            .expect("a Date line without its end");
        rest = &after[end..];
    }
    out.extend_from_slice(rest);
    out
}

fn same_requests_however_split(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut rng = XorShift(u.arbitrary::<u64>().unwrap_or(0) | 1);
    let count = int(&mut u, 1..=4);
    let mut budget = BODY_BUDGET;
    let built: Vec<Built> = (0..count)
        .map(|index| build_request(&mut u, &mut rng, &mut budget, index + 1 == count))
        .collect();
    let stream: Vec<u8> = built.iter().flat_map(|b| b.bytes.iter().copied()).collect();
    let expected: Vec<Heard> = built.iter().map(|b| b.heard.clone()).collect();

    // The cut: piece lengths steered by the input while it lasts, then drawn at random; a long
    // stream is not cut into more than a few thousand pieces.
    let largest = *pick(&mut u, &[1usize, 2, 3, 7, 16, 64, 512, 4096, 10_000]);
    let largest = largest.max(stream.len() / 2048);
    let mut pieces = Vec::new();
    let mut rest = stream.as_slice();
    while !rest.is_empty() {
        let length = if u.is_empty() {
            1 + rng.below(largest)
        } else {
            int(&mut u, 1..=largest)
        };
        let (piece, after) = rest.split_at(length.min(rest.len()));
        pieces.push(piece.to_vec());
        rest = after;
    }

    let mut runs = Vec::new();
    for reads in [vec![stream.clone()], pieces] {
        let service = Recorder::default();
        let (written, unread) = run(reads, &service);
        let heard = service.heard.into_inner().unwrap();
        assert_eq!(
            heard,
            expected,
            "the requests seen differ from those sent in {:?}",
            String::from_utf8_lossy(&stream)
        );
        assert_eq!(unread, 0, "the stream was not read to its end");
        check_expected_answers(&written, &built);
        runs.push(without_dates(&written));
    }
    assert!(
        runs[0] == runs[1],
        "the answers depend on how the stream was cut:\n{:?}\n{:?}",
        String::from_utf8_lossy(&runs[0]),
        String::from_utf8_lossy(&runs[1])
    );
}

/// Checks the answers to the built requests as any answers are checked, then their statuses:
/// `100` where a body was announced with `Expect`, `204` for DELETE, `200` for the rest.
fn check_expected_answers(written: &[u8], built: &[Built]) {
    let seen: Vec<Seen> = built
        .iter()
        .map(|b| Seen {
            version: Version::Http11,
            head_only: b.heard.method == "HEAD",
            streamed: false,
        })
        .collect();
    check_answers(written, &seen, None);
    let mut statuses = Vec::new();
    let mut rest = written;
    while !rest.is_empty() {
        let head = parse_answer_head(rest);
        statuses.push(head.status);
        let index = statuses.iter().filter(|&&status| status != 100).count();
        let body = match head.status {
            100 => 0,
            _ if built[index - 1].heard.method == "HEAD" => 0,
            _ => head.content_length.unwrap_or(0),
        };
        rest = &rest[head.length + body..];
    }
    let expected: Vec<u16> = built
        .iter()
        .flat_map(|b| {
            let status = if b.heard.method == "DELETE" { 204 } else { 200 };
            b.continues.then_some(100).into_iter().chain([status])
        })
        .collect();
    assert_eq!(statuses, expected, "answers other than expected");
}
