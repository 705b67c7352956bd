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
//! connections. Only if no descriptors come free for [`HEADROOM_WAIT`], or more than
//! [`MAX_QUICK_DEATHS`] servers in a row die young (something other than a passing shortage),
//! does the relay exit non-zero and leave it to the service manager.
//!
//! The accept error arrives through `recv`. A panic is noticed by a panic hook, which cannot
//! tell tiny_http's accept thread from its connection threads (all unnamed); so after a panic,
//! and every [`PROBE_PERIOD`] regardless, the supervisor asks its own `/healthz` over loopback.
//! A connection that is accepted by the kernel but gets no answer, twice in a row, means
//! nobody accepts: rebuild. Anything else proves nothing and rebuilds nothing: a probe that
//! cannot connect (no descriptor to spare, the listening address gone from its interface, no
//! IPv6 loopback for a `[::]` listener), or one that waited while dispatch was blocked on busy
//! handlers (`dispatch_stalls`), since the probe waits in the same queue.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tiny_http::{Request, Server};

use crate::dispatch_stalls::DispatchStalls;
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
/// Inconclusive probes in a row after which the supervisor stops asking until the next alarm
/// or period.
const MAX_INCONCLUSIVE: usize = 30;
/// Servers in a row that die before [`STABLE_LIFE`] before the relay gives up.
pub const MAX_QUICK_DEATHS: usize = 30;
/// How long a dispatch thread blocks in `recv` before it checks whether it has been replaced.
const RECV_SLICE: Duration = Duration::from_secs(1);
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
    /// More than [`MAX_QUICK_DEATHS`] servers in a row stopped accepting soon after starting.
    KeepsDying,
}

/// Serves requests with `handle` (called on a dispatch thread) for as long as the accept loop
/// can be kept alive. `stack_bytes` is the stack of the dispatch threads; an old server's
/// dispatch thread retires after `retire_after` without a request.
pub fn serve(
    listener: TcpListener,
    stack_bytes: usize,
    retire_after: Duration,
    stalls: Arc<DispatchStalls>,
    handle: Arc<dyn Fn(Request) + Send + Sync>,
) -> Result<(), Stopped> {
    let local = listener.local_addr().map_err(Stopped::CannotRebuild)?;
    let prober = Prober {
        target: own_sockets::reachable(local),
        stalls,
    };
    let alarms = Arc::new(Alarms::default());
    install_panic_hook(Arc::clone(&alarms));
    let mut backoff = Duration::ZERO;
    let mut quick_deaths = 0;
    let mut generation = 0;
    loop {
        let born = Instant::now();
        let server = build_server(&listener, generation)?;
        let replaced = Arc::new(AtomicBool::new(false));
        let dispatch = Dispatch {
            generation,
            retire_after,
            handle: Arc::clone(&handle),
            alarms: Arc::clone(&alarms),
            replaced: Arc::clone(&replaced),
        };
        dispatch
            .start(server, stack_bytes)
            .map_err(Stopped::CannotRebuild)?;
        watch_until_dead(&alarms, &prober);
        // Its connections are served until they go quiet; then its thread ends.
        replaced.store(true, Ordering::Release);
        if born.elapsed() >= STABLE_LIFE {
            backoff = Duration::ZERO;
            quick_deaths = 0;
        } else {
            backoff = (backoff * 2).clamp(FIRST_BACKOFF, MAX_BACKOFF);
            quick_deaths += 1;
            if quick_deaths > MAX_QUICK_DEATHS {
                return Err(Stopped::KeepsDying);
            }
        }
        thread::sleep(backoff);
        wait_for_headroom().map_err(Stopped::CannotRebuild)?;
        generation += 1;
        log::warn!("starting a new HTTP server on the same socket ({generation} so far)");
    }
}

/// A tiny_http server on a duplicate of the listening socket. Starting its accept thread can
/// fail where tiny_http panics (no thread can be started); after the first server that is
/// retried while descriptors and threads may come free.
fn build_server(listener: &TcpListener, generation: usize) -> Result<Server, Stopped> {
    let mut attempt = 0;
    loop {
        let built = listener.try_clone().and_then(|copy| {
            match panic::catch_unwind(AssertUnwindSafe(|| Server::from_listener(copy, None))) {
                Ok(Ok(server)) => Ok(server),
                Ok(Err(error)) => Err(io::Error::other(error)),
                Err(_) => Err(io::Error::other("cannot start tiny_http's accept thread")),
            }
        });
        match built {
            Ok(server) => return Ok(server),
            Err(error) if generation > 0 && attempt < MAX_QUICK_DEATHS => {
                log::warn!("cannot start a new HTTP server yet ({error}); retrying");
                attempt += 1;
                thread::sleep(MAX_BACKOFF);
                wait_for_headroom().map_err(Stopped::CannotRebuild)?;
            }
            Err(error) => return Err(Stopped::CannotRebuild(error)),
        }
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
    /// Set when a newer server has taken over (its accept thread died without a word, after a
    /// panic, or it was judged dead by the probe).
    replaced: Arc<AtomicBool>,
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
        while !self.replaced.load(Ordering::Acquire) {
            match server.recv_timeout(RECV_SLICE) {
                Ok(Some(request)) => (self.handle)(request),
                Ok(None) => {}
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
fn watch_until_dead(alarms: &Alarms, prober: &Prober) {
    loop {
        match alarms.wait(PROBE_PERIOD) {
            Some(Alarm::AcceptFailed) => return,
            Some(Alarm::Panicked) | None => {
                if prober.confirmed_dead() {
                    log::error!("the HTTP server does not answer its own health check");
                    return;
                }
            }
        }
    }
}

/// Asks the relay's own `/healthz`.
struct Prober {
    target: SocketAddr,
    stalls: Arc<DispatchStalls>,
}

impl Prober {
    /// Probes until the answer is clear: alive after one answer, dead after two accepted
    /// connections in a row got none. Inconclusive probes are retried every [`PROBE_RETRY`], up
    /// to [`MAX_INCONCLUSIVE`] times, after which the server is given the benefit of the doubt.
    fn confirmed_dead(&self) -> bool {
        let mut unanswered = 0;
        for _ in 0..MAX_INCONCLUSIVE {
            match self.probe() {
                Probe::Answered => return false,
                Probe::Unanswered => {
                    unanswered += 1;
                    if unanswered == 2 {
                        return true;
                    }
                }
                Probe::Inconclusive => unanswered = 0,
            }
            thread::sleep(PROBE_RETRY);
        }
        false
    }

    fn probe(&self) -> Probe {
        if self.stalls.within(Duration::ZERO) {
            return Probe::Inconclusive;
        }
        match probe_answer(self.target, PROBE_TIMEOUT) {
            // Dispatch blocked meanwhile: the probe waited in line, which proves nothing.
            Probe::Unanswered if self.stalls.within(PROBE_TIMEOUT) => Probe::Inconclusive,
            answer => answer,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Probe {
    Answered,
    /// Connected, but no HTTP answer in time.
    Unanswered,
    /// Could not tell (see the module docs).
    Inconclusive,
}

/// Asks `GET /healthz` on our own address.
fn probe_answer(target: SocketAddr, timeout: Duration) -> Probe {
    let mut connection = match TcpStream::connect_timeout(&target, timeout) {
        Ok(connection) => connection,
        Err(error) => {
            log::debug!("health probe could not connect: {error}");
            return Probe::Inconclusive;
        }
    };
    match ask(&mut connection, timeout) {
        Ok(true) => Probe::Answered,
        Ok(false) => Probe::Unanswered,
        Err(error) => {
            log::debug!("health probe got no answer: {error}");
            Probe::Unanswered
        }
    }
}

/// Sends `GET /healthz` and says whether an HTTP answer starts within `timeout`.
fn ask(connection: &mut TcpStream, timeout: Duration) -> io::Result<bool> {
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
        // Nobody listening at all: refused, which says nothing about our accept loop (the
        // address may just be unreachable from here).
        assert_eq!(
            probe_answer(target, Duration::from_millis(200)),
            Probe::Inconclusive
        );
    }

    #[test]
    fn a_probe_during_a_dispatch_stall_proves_nothing() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let stalls = Arc::new(DispatchStalls::default());
        let prober = Prober {
            target: listener.local_addr().unwrap(),
            stalls: Arc::clone(&stalls),
        };
        let (release, blocked) = std::sync::mpsc::channel::<()>();
        let staller = thread::spawn(move || stalls.during(|| blocked.recv()));
        while !prober.stalls.within(Duration::ZERO) {
            thread::yield_now();
        }
        assert_eq!(prober.probe(), Probe::Inconclusive);
        release.send(()).unwrap();
        staller.join().unwrap().unwrap();
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
