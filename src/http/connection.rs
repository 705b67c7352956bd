//! One connection, on its own thread: read a head, let the service answer, write the answer,
//! and again while the connection is kept alive.
//!
//! Requests are strictly sequential: the next head is read only once the previous answer has
//! been written, and bytes pipelined behind a stream are never read at all (the stream ends
//! the connection). A client that pipelines thousands of requests and never reads its answers
//! therefore blocks only its own thread, until the socket's write timeout ends it.
//!
//! Every wait has a deadline: an idle kept-alive connection gets `--request-timeout` to begin
//! its next request, and a head gets the same from its first byte (then a 408); a body gets
//! `--push-timeout` (see `body`); writes are bounded by the socket's write timeout.
//!
//! A connection waiting for a head holds a thread but does no work, so it is the first to go
//! when the connection limit is reached: a newcomer then closes the connection that has waited
//! longest (and at least [`RECLAIM_AFTER`]) instead of being turned away. Streams and uploads
//! in progress are never closed for a newcomer, and a client trickling heads (slowloris) cannot
//! keep phones and viewers out by holding every slot.
//!
//! A connection closes after an answer whenever its request asked for it or its body was not
//! read to its end. In the last case the client may still be sending, and
//! closing a socket with unread data makes the kernel send a reset that can destroy the answer
//! in flight; so the connection shuts its write side and reads on, discarding, for at most
//! [`LINGER`] (Apache's lingering close) before it closes.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::http::body::{Body, Framing};
use crate::http::head::{Head, Version};
use crate::http::input::{Input, Wire};
use crate::http::response::Response;
use crate::refusal::{Reason, Refusal};

/// Longest time spent discarding what a client still sends after its answer, before closing.
pub const LINGER: Duration = Duration::from_secs(2);
/// A connection waiting this long for its head may be closed to make room for a newcomer: a
/// phone on a weak Wi-Fi sends a head well within it.
pub const RECLAIM_AFTER: Duration = Duration::from_secs(1);

/// What the connection layer asks of the application above it.
pub trait Service: Send + Sync + 'static {
    /// Answers one request: a complete [`Response`], or [`Reply::Streamed`] once the handler
    /// has written an endless answer itself through [`Request::writer`].
    fn serve(&self, request: &mut Request<'_>) -> Reply;

    /// Hears of a request refused before any handler saw it (a bad head, the connection
    /// limit), for counting and logging.
    fn refused(&self, refusal: &Refusal, peer: SocketAddr);
}

/// How a request was answered.
pub enum Reply {
    Answer(Response),
    /// The handler wrote its own endless answer; the connection closes after it.
    Streamed,
}

/// Timeouts of the connection layer.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// For a head, from its first byte; and for an idle connection, for that first byte.
    pub request: Duration,
    /// For a request body, from the end of its head.
    pub body: Duration,
}

/// Connections open and requests being served, for `/metrics` and the connection limit, and
/// the connections waiting for a head, which the limit may reclaim.
#[derive(Default)]
pub struct Load {
    open: AtomicUsize,
    busy: AtomicUsize,
    waiting: Mutex<Vec<Waiting>>,
    next_waiting: AtomicUsize,
}

/// A connection waiting for its next request head, since when.
struct Waiting {
    id: usize,
    since: Instant,
    wire: Arc<dyn Wire>,
}

impl Load {
    /// Closes the connection that has waited longest for a head, if one has waited at least
    /// `after`; returns whether one was closed.
    pub fn reclaim_waiting(&self, after: Duration) -> bool {
        let mut waiting = self.waiting.lock();
        let oldest = waiting
            .iter()
            .enumerate()
            .min_by_key(|(_, entry)| entry.since)
            .filter(|(_, entry)| entry.since.elapsed() >= after)
            .map(|(index, _)| index);
        let Some(index) = oldest else {
            return false;
        };
        // Shut under the lock: the connection then either is still waiting and sees its
        // socket end, or has already taken itself off the list and will serve its request.
        waiting.swap_remove(index).wire.shutdown(Shutdown::Both);
        true
    }

    /// Lists a connection as waiting for a head until the guard is dropped.
    fn waiting_for_head<'a>(&'a self, wire: &Arc<dyn Wire>) -> WaitingGuard<'a> {
        let id = self.next_waiting.fetch_add(1, Ordering::Relaxed);
        self.waiting.lock().push(Waiting {
            id,
            since: Instant::now(),
            wire: Arc::clone(wire),
        });
        WaitingGuard { load: self, id }
    }

    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Requests being served now; each open stream is one.
    pub fn busy(&self) -> usize {
        self.busy.load(Ordering::Relaxed)
    }

    /// Counts a connection as open until the guard is dropped.
    pub fn opened(self: &Arc<Self>) -> Counted {
        Counted::new(Arc::clone(self), |load| &load.open)
    }

    fn serving(self: &Arc<Self>) -> Counted {
        Counted::new(Arc::clone(self), |load| &load.busy)
    }
}

/// A connection's place on the waiting list, taken off when dropped.
struct WaitingGuard<'a> {
    load: &'a Load,
    id: usize,
}

impl WaitingGuard<'_> {
    /// The head has begun to arrive: the connection has waited no longer than now, so that a
    /// client starting its request after a quiet spell is not the first to be closed.
    fn restart(&self) {
        let mut waiting = self.load.waiting.lock();
        if let Some(entry) = waiting.iter_mut().find(|entry| entry.id == self.id) {
            entry.since = Instant::now();
        }
    }

    /// Takes the connection off the list; `false` if the limit reclaimed it first (its socket
    /// is shut, and whatever it read must not be served).
    fn finish(self) -> bool {
        let mut waiting = self.load.waiting.lock();
        let listed = waiting.iter().position(|entry| entry.id == self.id);
        if let Some(index) = listed {
            waiting.swap_remove(index);
        }
        drop(waiting);
        std::mem::forget(self);
        listed.is_some()
    }
}

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        let mut waiting = self.load.waiting.lock();
        if let Some(index) = waiting.iter().position(|entry| entry.id == self.id) {
            waiting.swap_remove(index);
        }
    }
}

/// One unit of a [`Load`] count, given back when dropped (also when a handler panics).
pub struct Counted {
    load: Arc<Load>,
    counter: fn(&Load) -> &AtomicUsize,
}

impl Counted {
    fn new(load: Arc<Load>, counter: fn(&Load) -> &AtomicUsize) -> Counted {
        counter(&load).fetch_add(1, Ordering::Relaxed);
        Counted { load, counter }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        (self.counter)(&self.load).fetch_sub(1, Ordering::Relaxed);
    }
}

/// A request being served: its head, its body, and the connection it came on.
pub struct Request<'c> {
    head: Head,
    peer: SocketAddr,
    body: Body<'c>,
    wire: Arc<dyn Wire>,
}

impl<'c> Request<'c> {
    pub fn head(&self) -> &Head {
        &self.head
    }

    pub fn method(&self) -> &str {
        self.head.method()
    }

    pub fn target(&self) -> &str {
        self.head.target()
    }

    pub fn header<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.head.header(name)
    }

    pub fn version(&self) -> Version {
        self.head.version()
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    pub fn body(&mut self) -> &mut Body<'c> {
        &mut self.body
    }

    /// The connection, for ending it from another thread (a deleted device's viewers).
    pub fn wire(&self) -> Arc<dyn Wire> {
        Arc::clone(&self.wire)
    }

    /// A writer straight onto the connection, for an answer that has no end (the MJPEG
    /// stream). The handler writes the head itself and returns [`Reply::Streamed`].
    pub fn writer(&self) -> WireWriter<'_> {
        WireWriter(&*self.wire)
    }
}

/// `io::Write` onto a connection; every write goes out whole.
pub struct WireWriter<'a>(&'a dyn Wire);

impl io::Write for WireWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.write_all(bytes)?;
        Ok(bytes.len())
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0
            .write_all(bytes)
            .inspect_err(|error| abort_if_stalled(self.0, error))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Serves every request of one connection, then closes it.
pub fn serve(
    wire: Arc<dyn Wire>,
    peer: SocketAddr,
    service: &dyn Service,
    timeouts: Timeouts,
    load: &Arc<Load>,
) {
    let mut input = Input::new(Arc::clone(&wire));
    loop {
        let waiting = load.waiting_for_head(&wire);
        let head = read_head(&mut input, timeouts.request, &waiting);
        if !waiting.finish() {
            return;
        }
        let head = match head {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(refusal) => return refuse(&mut input, &refusal, Version::Http11, peer, service),
        };
        let version = head.version();
        let framing = match Framing::of(&head) {
            Ok(framing) => framing,
            Err(refusal) => return refuse(&mut input, &refusal, version, peer, service),
        };
        let expects_continue = match head.header("Expect") {
            None => false,
            Some(value) if value.trim().eq_ignore_ascii_case("100-continue") => {
                version == Version::Http11
            }
            Some(_) => {
                let refusal = Refusal::new(
                    Reason::ExpectationFailed,
                    "only Expect: 100-continue is understood",
                );
                return refuse(&mut input, &refusal, version, peer, service);
            }
        };
        let keep_alive_wanted = head.wants_keep_alive();
        let head_only = head.method() == "HEAD";
        let serving = load.serving();
        let mut request = Request {
            head,
            peer,
            body: Body::new(&mut input, framing, timeouts.body, expects_continue),
            wire: Arc::clone(&wire),
        };
        let reply = service.serve(&mut request);
        let body_finished = request.body.is_finished();
        drop(request);
        let response = match reply {
            Reply::Streamed => return,
            Reply::Answer(response) => response,
        };
        let keep_alive = keep_alive_wanted && body_finished;
        let written = response.write_to(&*wire, version, head_only, keep_alive);
        drop(serving);
        if let Err(error) = written {
            log::debug!("{peer}: answer not delivered: {error}");
            abort_if_stalled(&*wire, &error);
            return;
        }
        if !keep_alive {
            if !body_finished || !input.buffered().is_empty() {
                linger(&*wire);
            }
            return;
        }
    }
}

/// A write that timed out means a peer that stopped reading: what it has not taken is thrown
/// away when the connection closes, rather than held by the system for minutes.
fn abort_if_stalled(wire: &dyn Wire, error: &io::Error) {
    if matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    ) {
        wire.abort();
    }
}

/// Reads the next request head. `Ok(None)` when the connection ends quietly: the client
/// closed it, or stayed idle past the timeout before sending a byte.
fn read_head(
    input: &mut Input,
    timeout: Duration,
    waiting: &WaitingGuard<'_>,
) -> Result<Option<Head>, Refusal> {
    if input.buffered().is_empty() {
        match input.fill(Instant::now() + timeout) {
            Ok(0) | Err(_) => return Ok(None),
            Ok(_) => {}
        }
    }
    waiting.restart();
    let deadline = Instant::now() + timeout;
    loop {
        if let Some((head, length)) = Head::parse(input.buffered())? {
            input.consume(length);
            return Ok(Some(head));
        }
        match input.fill(deadline) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::TimedOut => {
                return Err(Refusal::new(
                    Reason::Timeout,
                    "request head not complete in time (--request-timeout)",
                ))
            }
            Err(_) => return Ok(None),
        }
    }
}

/// Answers a request the layer refused itself, and closes the connection: after a bad head
/// or framing, nothing that follows can be trusted to be a request.
fn refuse(
    input: &mut Input,
    refusal: &Refusal,
    version: Version,
    peer: SocketAddr,
    service: &dyn Service,
) {
    service.refused(refusal, peer);
    let wire = Arc::clone(input.wire());
    if Response::refusal(refusal)
        .write_to(&*wire, version, false, false)
        .is_ok()
    {
        linger(&*wire);
    }
}

/// Shuts the write side and discards what the client still sends, for at most [`LINGER`], so
/// that the answer just written is not lost to a reset (see the module docs).
fn linger(wire: &dyn Wire) {
    wire.shutdown(Shutdown::Write);
    let deadline = Instant::now() + LINGER;
    let mut scratch = [0u8; 2048];
    while let Ok(count) = wire.read_by(&mut scratch, deadline) {
        if count == 0 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::script::Script;
    use std::io::Read;

    /// Answers `METHOD TARGET BODY-LENGTH`; reads the body only for targets starting `/read`.
    struct Echo;

    impl Service for Echo {
        fn serve(&self, request: &mut Request<'_>) -> Reply {
            let mut body = Vec::new();
            if request.target().starts_with("/read") {
                if let Err(error) = request.body().read_to_end(&mut body) {
                    return Reply::Answer(Response::text(400, error.to_string()));
                }
            }
            let text = format!("{} {} {}", request.method(), request.target(), body.len());
            Reply::Answer(Response::text(200, text))
        }

        fn refused(&self, _: &Refusal, _: SocketAddr) {}
    }

    /// Runs one connection over `reads`; returns the status line and body of every answer,
    /// and what else was written (interim answers).
    fn exchange(reads: &[&[u8]]) -> Vec<String> {
        let script = Arc::new(Script::new(reads.iter().map(|piece| piece.to_vec())));
        let timeouts = Timeouts {
            request: Duration::from_secs(1),
            body: Duration::from_secs(1),
        };
        let peer = SocketAddr::from(([127, 0, 0, 1], 9));
        serve(
            script.clone(),
            peer,
            &Echo,
            timeouts,
            &Arc::new(Load::default()),
        );
        let written = String::from_utf8(script.written()).unwrap();
        written
            .split("HTTP/1.")
            .filter(|answer| !answer.is_empty())
            .map(|answer| {
                let status = answer.lines().next().unwrap_or_default();
                let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
                let close = if answer.contains("\r\nConnection: close\r\n") {
                    " (close)"
                } else {
                    ""
                };
                format!("{status}{close}|{body}")
            })
            .collect()
    }

    #[test]
    fn pipelined_requests_are_answered_in_order() {
        let answers =
            exchange(&[b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n"]);
        assert_eq!(answers, ["1 200 OK|GET /a 0", "1 200 OK|GET /b 0"]);
    }

    #[test]
    fn a_request_split_into_single_bytes_is_the_same_request() {
        let text = b"POST /read HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
        let pieces: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(exchange(&pieces), ["1 200 OK|POST /read 3"]);
    }

    #[test]
    fn chunked_bodies_are_read_to_their_end_and_the_connection_goes_on() {
        let answers = exchange(&[
            b"POST /read HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: x\r\n\r\n",
            b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n",
        ]);
        assert_eq!(answers, ["1 200 OK|POST /read 5", "1 200 OK|GET /next 0"]);
    }

    #[test]
    fn an_unread_body_closes_the_connection_and_is_never_a_request() {
        let smuggled = b"POST /nowhere HTTP/1.1\r\nHost: h\r\nContent-Length: 40\r\n\r\n\
                         GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n";
        assert_eq!(exchange(&[smuggled]), ["1 200 OK (close)|POST /nowhere 0"]);
    }

    #[test]
    fn ambiguous_framing_is_refused_and_closes() {
        for framing in [
            "Transfer-Encoding: chunked\r\nContent-Length: 5",
            "Transfer-Encoding: gzip, chunked",
            "Transfer-Encoding: chunked, gzip",
            "Content-Length: 5\r\nContent-Length: 6",
        ] {
            let text = format!(
                "POST /read HTTP/1.1\r\nHost: h\r\n{framing}\r\n\r\n0\r\n\r\n\
                 GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"
            );
            let answers = exchange(&[text.as_bytes()]);
            assert_eq!(answers.len(), 1, "{framing}: {answers:?}");
            assert!(
                answers[0].starts_with("1 400 Bad Request (close)|"),
                "{framing}"
            );
        }
    }

    #[test]
    fn a_broken_chunk_ends_the_request_and_the_connection() {
        let answers = exchange(&[
            b"POST /read HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
              3\r\nabcXX\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n",
        ]);
        assert_eq!(
            answers,
            ["1 400 Bad Request (close)|chunk data longer than its size"]
        );
    }

    #[test]
    fn sizeless_chunks_and_bare_line_feeds_in_chunk_lines_and_trailers_are_refused() {
        let head = "POST /read HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
        for body in [
            "3;\nXX\r\nabc\r\n0\r\n\r\n",
            "3\rX\r\nabc\r\n0\r\n\r\n",
            "0\r\nX: a\n\r\nGET /hidden HTTP/1.1\r\nHost: h\r\n\r\n",
            "0\r\nGET /hidden HTTP/1.1\r\n\r\n",
            "3\r\nabc\r\n\r\n\r\n",
            "3\r\nabc\r\n;x\r\n\r\n",
        ] {
            let text = format!("{head}{body}GET /next HTTP/1.1\r\nHost: h\r\n\r\n");
            let answers = exchange(&[text.as_bytes()]);
            assert_eq!(answers.len(), 1, "{body:?}: {answers:?}");
            assert!(
                answers[0].starts_with("1 400 Bad Request (close)|"),
                "{body:?}"
            );
        }
        let fine = format!("{head}3;name=value\r\nabc\r\n0\r\nX-T: 1\r\n\r\n");
        assert_eq!(exchange(&[fine.as_bytes()]), ["1 200 OK|POST /read 3"]);
    }

    #[test]
    fn continue_is_sent_only_when_the_body_is_read() {
        let expect =
            b"POST /read HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(
            exchange(&[expect, b"ab"]),
            ["1 100 Continue|", "1 200 OK|POST /read 2"]
        );
        let unread =
            b"POST /x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(exchange(&[unread]), ["1 200 OK (close)|POST /x 0"]);
        let odd = b"POST /x HTTP/1.1\r\nHost: h\r\nExpect: coffee\r\n\r\n";
        assert!(exchange(&[odd])[0].starts_with("1 417 Expectation Failed (close)|"));
    }

    #[test]
    fn http_10_is_answered_in_kind_and_closed_unless_kept_alive() {
        assert_eq!(
            exchange(&[b"GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.0\r\n\r\n"]),
            ["0 200 OK (close)|GET /a 0"]
        );
        assert_eq!(
            exchange(&[
                b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n"
            ]),
            ["0 200 OK|GET /a 0", "0 200 OK (close)|GET /b 0"]
        );
    }

    #[test]
    fn bad_heads_get_their_status_and_a_slow_head_a_408() {
        assert!(exchange(&[b"GET / HTTP/2.0\r\n\r\n"])[0].starts_with("1 505 "));
        assert!(exchange(&[b"GET / HTTP/1.1\r\n\r\n"])[0].starts_with("1 400 "));
        assert!(exchange(&[b"GET / HTTP/1.1\r\nHost: h\r\n", b""])[0].starts_with("1 408 "));
        let long = format!(
            "GET / HTTP/1.1\r\nHost: h\r\nX: {}\r\n\r\n",
            "y".repeat(9000)
        );
        assert!(exchange(&[long.as_bytes()])[0].starts_with("1 431 "));
        // An idle connection that never sends a byte is closed without a word.
        assert!(exchange(&[b""]).is_empty());
    }
}
