//! Keeps tiny_http accepting connections, and rebuilds it when it stops.
//!
//! tiny_http accepts on one thread, and that thread can die while the process lives on:
//! - any error from `accept()` (out of file descriptors, out of memory) ends its loop for good;
//!   `Server::recv` then returns the error once;
//! - it panics, with no message to `recv`, when it cannot duplicate an accepted socket (out of
//!   descriptors between `accept` and the clone) or cannot start a connection thread.
//!
//! Either way the relay would keep its open streams but never take a new connection, which on
//! an unattended router looks exactly like a dead relay. Exiting would let procd or systemd
//! restart it, but would also drop every viewer and every device's last frame, and a restart
//! does not cure a shortage that is still there. So the supervisor rebuilds instead: a new
//! `tiny_http::Server` on a duplicate of the same listening socket (no connection is refused
//! meanwhile: the kernel queues them), while the old server's dispatch thread goes on serving
//! the connections it already has, and retires once they have sent nothing for a while.
//!
//! A rebuild waits until a few descriptors are free again (the connection watch frees them by
//! closing idle connections), so that the new server does not die at once on the same
//! shortage, and rebuilds that follow each other quickly (a flood of connections that keeps
//! exhausting descriptors) back off up to [`MAX_BACKOFF`]; meanwhile the kernel queues new
//! connections. Only if no descriptors come free for [`HEADROOM_WAIT`] does the relay exit
//! non-zero and leave it to the service manager.
//!
//! The accept error arrives through `recv`. A panic is noticed by a panic hook, which cannot
//! tell tiny_http's accept thread from its connection threads (all unnamed); so after a panic,
//! and every [`PROBE_PERIOD`] regardless, the supervisor asks its own `/healthz` over loopback.
//! No answer twice in a row means nobody accepts: rebuild.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tiny_http::{Request, Server};

use crate::own_sockets;

/// How often the accept loop is checked when nothing suggests a problem.
pub const PROBE_PERIOD: Duration = Duration::from_secs(30);
/// How long a probe waits for its answer; generous, because a busy relay answers slowly and a
/// needless rebuild costs a thread.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// Before the second probe of a suspected failure.
const PROBE_RETRY: Duration = Duration::from_secs(1);
/// A server that lived this long died of something new: rebuild without delay.
const STABLE_LIFE: Duration = Duration::from_secs(60);
/// Delays between quick successive rebuilds: doubling from the first, up to the second.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Descriptors that must be free before a new server is started.
const HEADROOM: usize = 16;
/// How long to wait for that headroom before giving up.
pub const HEADROOM_WAIT: Duration = Duration::from_secs(300);
const HEADROOM_RETRY: Duration = Duration::from_millis(250);

/// Why the supervisor looks at the accept loop.
#[derive(Debug)]
enum Alarm {
    /// Certain: the dispatch thread has logged the error.
    AcceptFailed,
    Panicked,
}

/// Raised by the dispatch threads and the panic hook, awaited by the supervisor.
#[derive(Default)]
struct Alarms {
    raised: Mutex<Option<Alarm>>,
    wake: Condvar,
}

impl Alarms {
    fn raise(&self, alarm: Alarm) {
        let mut raised = self.raised.lock();
        // An accept failure is certain; a panic only a hint: keep the stronger one.
        if !matches!(*raised, Some(Alarm::AcceptFailed)) {
            *raised = Some(alarm);
        }
        self.wake.notify_one();
    }

    fn wait(&self, timeout: Duration) -> Option<Alarm> {
        let mut raised = self.raised.lock();
        if raised.is_none() {
            self.wake.wait_for(&mut raised, timeout);
        }
        raised.take()
    }
}

/// Why serving stopped for good.
#[derive(Debug)]
pub enum Stopped {
    /// A server could not be built even after waiting for resources.
    CannotRebuild(io::Error),
}

/// Serves requests with `handle` (called on a dispatch thread) for as long as the accept loop
/// can be kept alive. `stack_bytes` is the stack of the dispatch threads; an old server's
/// dispatch thread retires after `retire_after` without a request.
pub fn serve(
    listener: TcpListener,
    stack_bytes: usize,
    retire_after: Duration,
    handle: Arc<dyn Fn(Request) + Send + Sync>,
) -> Result<(), Stopped> {
    let local = listener.local_addr().map_err(Stopped::CannotRebuild)?;
    let probe_target = own_sockets::reachable(local);
    let alarms = Arc::new(Alarms::default());
    install_panic_hook(Arc::clone(&alarms));
    let mut backoff = Duration::ZERO;
    let mut generation = 0;
    loop {
        let born = Instant::now();
        let server = listener
            .try_clone()
            .and_then(|copy| Server::from_listener(copy, None).map_err(io::Error::other))
            .map_err(Stopped::CannotRebuild)?;
        let dispatch = Dispatch {
            generation,
            retire_after,
            handle: Arc::clone(&handle),
            alarms: Arc::clone(&alarms),
        };
        dispatch
            .start(server, stack_bytes)
            .map_err(Stopped::CannotRebuild)?;
        watch_until_dead(&alarms, probe_target);
        backoff = if born.elapsed() >= STABLE_LIFE {
            Duration::ZERO
        } else {
            (backoff * 2).clamp(FIRST_BACKOFF, MAX_BACKOFF)
        };
        thread::sleep(backoff);
        wait_for_headroom().map_err(Stopped::CannotRebuild)?;
        generation += 1;
        log::warn!("starting a new HTTP server on the same socket ({generation} so far)");
    }
}

/// Waits until [`HEADROOM`] descriptors can be opened, for at most [`HEADROOM_WAIT`].
fn wait_for_headroom() -> io::Result<()> {
    let started = Instant::now();
    let mut logged = false;
    loop {
        let opened: io::Result<Vec<File>> =
            (0..HEADROOM).map(|_| File::open("/dev/null")).collect();
        match opened {
            Ok(_) => return Ok(()),
            Err(error) if started.elapsed() < HEADROOM_WAIT => {
                if !logged {
                    log::warn!(
                        "waiting for free file descriptors before accepting again ({error})"
                    );
                    logged = true;
                }
                thread::sleep(HEADROOM_RETRY);
            }
            Err(error) => return Err(error),
        }
    }
}

/// One server generation's dispatch thread.
struct Dispatch {
    generation: usize,
    retire_after: Duration,
    handle: Arc<dyn Fn(Request) + Send + Sync>,
    alarms: Arc<Alarms>,
}

impl Dispatch {
    /// Starts the thread that takes requests from `server` and hands them to `handle`. After
    /// its accept loop dies, it goes on serving the connections that server already has, and
    /// ends once they have sent nothing for `retire_after` (the connection watch closes idle
    /// ones well before that).
    fn start(self, server: Server, stack_bytes: usize) -> io::Result<()> {
        thread::Builder::new()
            .name(format!("sp-dispatch-{}", self.generation))
            .stack_size(stack_bytes)
            .spawn(move || self.run(&server))
            .map(drop)
    }

    fn run(&self, server: &Server) {
        loop {
            match server.recv() {
                Ok(request) => (self.handle)(request),
                Err(error) => {
                    log::error!("the HTTP server stopped accepting connections: {error}");
                    self.alarms.raise(Alarm::AcceptFailed);
                    break;
                }
            }
        }
        while let Ok(Some(request)) = server.recv_timeout(self.retire_after) {
            (self.handle)(request);
        }
        log::debug!("retired the dispatch thread of server {}", self.generation);
    }
}

/// Returns once the current server is known to accept no more.
fn watch_until_dead(alarms: &Alarms, probe_target: SocketAddr) {
    loop {
        match alarms.wait(PROBE_PERIOD) {
            Some(Alarm::AcceptFailed) => return,
            Some(Alarm::Panicked) | None => {
                if confirmed_dead(probe_target) {
                    log::error!("the HTTP server does not answer its own health check");
                    return;
                }
            }
        }
    }
}

/// Probes until the answer is clear: alive after one answer, dead after two probes in a row
/// got none. While this process has no descriptor to spare for a probe nothing can be learned
/// (and nothing rebuilt), so it keeps asking every [`PROBE_RETRY`].
fn confirmed_dead(target: SocketAddr) -> bool {
    let mut unanswered = 0;
    loop {
        match probe_answer(target, PROBE_TIMEOUT) {
            Probe::Answered => return false,
            Probe::Unanswered => {
                unanswered += 1;
                if unanswered == 2 {
                    return true;
                }
            }
            Probe::NoDescriptor => {}
        }
        thread::sleep(PROBE_RETRY);
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Probe {
    Answered,
    Unanswered,
    NoDescriptor,
}

/// Asks `GET /healthz` on our own address.
fn probe_answer(target: SocketAddr, timeout: Duration) -> Probe {
    match probe(target, timeout) {
        Ok(true) => Probe::Answered,
        Ok(false) => Probe::Unanswered,
        Err(error) if matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
            log::debug!("health probe postponed: {error}");
            Probe::NoDescriptor
        }
        Err(error) => {
            log::debug!("health probe failed: {error}");
            Probe::Unanswered
        }
    }
}

fn probe(target: SocketAddr, timeout: Duration) -> io::Result<bool> {
    let mut connection = TcpStream::connect_timeout(&target, timeout)?;
    connection.set_read_timeout(Some(timeout))?;
    connection.set_write_timeout(Some(timeout))?;
    connection.write_all(b"GET /healthz HTTP/1.0\r\n\r\n")?;
    let mut answer = [0u8; 8];
    let mut filled = 0;
    while filled < answer.len() {
        match connection.read(&mut answer[filled..])? {
            0 => break,
            count => filled += count,
        }
    }
    Ok(answer[..filled].starts_with(b"HTTP/1."))
}

/// Chains a hook that raises the alarm after the usual panic message. The relay's own threads
/// are named `sp-…`; a panic there is a bug to report, not a sign that accepting stopped.
fn install_panic_hook(alarms: Arc<Alarms>) {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        let ours = thread::current()
            .name()
            .is_some_and(|name| name.starts_with("sp-") || name == "main");
        if !ours {
            alarms.raise(Alarm::Panicked);
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_accept_failure_outranks_a_panic_hint() {
        let alarms = Alarms::default();
        alarms.raise(Alarm::AcceptFailed);
        alarms.raise(Alarm::Panicked);
        assert!(matches!(
            alarms.wait(Duration::ZERO),
            Some(Alarm::AcceptFailed)
        ));
        assert!(alarms.wait(Duration::from_millis(10)).is_none());
    }

    #[test]
    fn a_raised_alarm_wakes_the_waiter() {
        let alarms = Arc::new(Alarms::default());
        let raiser = Arc::clone(&alarms);
        let started = Instant::now();
        let handle = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            raiser.raise(Alarm::Panicked);
        });
        assert!(matches!(
            alarms.wait(Duration::from_secs(10)),
            Some(Alarm::Panicked)
        ));
        assert!(started.elapsed() < Duration::from_secs(10));
        handle.join().unwrap();
    }

    #[test]
    fn a_listener_nobody_accepts_on_fails_the_probe() {
        // The kernel completes the handshake into the backlog, but no answer ever comes.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = listener.local_addr().unwrap();
        assert_eq!(
            probe_answer(target, Duration::from_millis(200)),
            Probe::Unanswered
        );
        drop(listener);
        // Nobody listening at all: refused.
        assert_eq!(
            probe_answer(target, Duration::from_millis(200)),
            Probe::Unanswered
        );
    }

    #[test]
    fn a_server_that_answers_passes_the_probe() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (mut connection, _) = listener.accept().unwrap();
            let mut request = [0u8; 64];
            let _ = connection.read(&mut request).unwrap();
            connection
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .unwrap();
        });
        assert_eq!(
            probe_answer(target, Duration::from_secs(5)),
            Probe::Answered
        );
        server.join().unwrap();
    }
}
