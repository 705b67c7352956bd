//! The listening socket and the loop that accepts connections, each onto a thread of its own.
//!
//! The loop never ends. `accept` fails when descriptors or kernel memory run out (`EMFILE`,
//! `ENFILE`, `ENOBUFS`, `ENOMEM`): the loop waits a moment, for connections to close, and
//! goes on; it fails when a client gave up while waiting in the queue (`ECONNABORTED`) or a
//! signal came (`EINTR`): the loop simply goes on.
//!
//! Each accepted socket gets the options a stream needs, set here on the socket itself:
//! - `TCP_NODELAY`: each frame leaves at once instead of waiting for Nagle's algorithm;
//! - the write timeout (`--write-timeout`): a write that cannot proceed for that long fails,
//!   so a viewer that stops reading (a frozen browser tab) is dropped and its thread freed;
//! - TCP keep-alive with short timers (see [`KEEPALIVE_IDLE`]): a phone that vanished from
//!   the Wi-Fi without a word is found dead in under a minute;
//! - a fixed send buffer ([`SEND_BUFFER_BYTES`]): Linux grows a socket's send buffer up to
//!   4 MiB by itself, so each viewer that stops reading would pin megabytes of kernel memory
//!   (fifty frozen tabs: 200 MB, on a router with 64 MB) and take minutes to fill them before
//!   the write timeout can even start. A few frames' worth bounds both and costs no throughput
//!   on a LAN.
//!
//! Past `--max-connections` open connections, the one that has waited longest for a request
//! head makes room (see `connection`); if none is waiting, the newcomer gets a short 503
//! written without blocking and is closed at once: no thread is started for it. A thread that cannot be
//! started refuses its connection the same way, and the relay goes on.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::http::connection::{self, Load, Service, Timeouts};
use crate::http::head::Version;
use crate::http::input::Wire;
use crate::http::response::Response;
use crate::http::socket::Socket;
use crate::refusal::{Reason, Refusal};
use crate::sys;

/// Idle time before the first keep-alive probe.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
/// Time between probes.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// Unanswered probes before the connection is declared dead.
pub const KEEPALIVE_PROBES: u32 = 3;
/// Send buffer asked for (the kernel doubles it for its bookkeeping).
pub const SEND_BUFFER_BYTES: usize = 256 * 1024;
/// Reads of 2 KiB at most taken in from a connection turned away, before closing it.
const TURN_AWAY_READS: usize = 32;
/// How long to wait after `accept` failed for want of descriptors or memory.
const BACK_OFF: Duration = Duration::from_millis(100);

/// What a connection runs over once accepted: the socket itself, or a layer on it (TLS).
pub trait Transport: Send + Sync {
    /// The connection's wire over `socket`; `None` refuses the connection.
    fn wire(&self, socket: Socket) -> Option<Arc<dyn Wire>>;

    /// Whether a connection turned away may be told why in plain HTTP (not on a TLS port,
    /// where it would be garbage to the client: there it is simply closed).
    fn answers_in_plain_text(&self) -> bool {
        true
    }
}

/// Plain HTTP: the socket is the wire.
pub struct Plain;

impl Transport for Plain {
    fn wire(&self, socket: Socket) -> Option<Arc<dyn Wire>> {
        Some(Arc::new(socket))
    }
}

/// What the accept loop needs to know.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub max_connections: usize,
    pub write_timeout: Duration,
    pub timeouts: Timeouts,
    /// Stack of each connection's thread.
    pub stack_bytes: usize,
}

/// Accepts connections on `listener` for ever, serving each on a thread of its own.
pub fn serve(
    listener: TcpListener,
    settings: Settings,
    service: Arc<dyn Service>,
    load: Arc<Load>,
    transport: Arc<dyn Transport>,
) {
    let mut starved = false;
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                if starved {
                    log::info!("accepting connections again");
                    starved = false;
                }
                admit(stream, peer, &settings, &service, &load, &transport);
            }
            Err(error) if is_starvation(&error) => {
                if !starved {
                    log::warn!(
                        "cannot accept connections: {error} ({} open); retrying",
                        load.open()
                    );
                    starved = true;
                }
                thread::sleep(BACK_OFF);
            }
            Err(error) => log::debug!("accept failed: {error}"),
        }
    }
}

/// Out of descriptors or kernel memory: only time (connections closing) helps.
fn is_starvation(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

fn admit(
    stream: TcpStream,
    peer: SocketAddr,
    settings: &Settings,
    service: &Arc<dyn Service>,
    load: &Arc<Load>,
    transport: &Arc<dyn Transport>,
) {
    if let Err(error) = configure(&stream, settings.write_timeout) {
        log::debug!("{peer}: cannot set socket options: {error}");
        return;
    }
    if load.open() >= settings.max_connections && !load.reclaim_waiting(connection::RECLAIM_AFTER) {
        let refusal = Refusal::new(
            Reason::ConnectionLimit,
            format!(
                "server busy: {} connections open (--max-connections); try again later",
                settings.max_connections
            ),
        );
        service.refused(&refusal, peer);
        if transport.answers_in_plain_text() {
            turn_away(Socket::new(stream, settings.write_timeout), &refusal);
        }
        return;
    }
    let open = load.opened();
    let service = Arc::clone(service);
    let load = Arc::clone(load);
    let timeouts = settings.timeouts;
    let write_timeout = settings.write_timeout;
    let transport = Arc::clone(transport);
    let started = thread::Builder::new()
        .name("sp-conn".into())
        .stack_size(settings.stack_bytes)
        .spawn(move || {
            let _open = open;
            let Some(wire) = transport.wire(Socket::new(stream, write_timeout)) else {
                return;
            };
            connection::serve(wire, peer, &*service, timeouts, &load);
        });
    if let Err(error) = started {
        // The closure, and with it the socket, is dropped: that connection is refused.
        log::warn!("{peer}: cannot start a thread for the connection: {error}");
    }
}

fn configure(stream: &TcpStream, write_timeout: Duration) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(write_timeout))?;
    sys::set_keepalive(stream, KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_PROBES)?;
    sys::set_send_buffer(stream, SEND_BUFFER_BYTES)
}

/// Writes a refusal without waiting for the client, takes in whatever it already sent (so
/// that closing does not reset the connection under the answer), and closes. A `HEAD` request
/// that has already arrived gets the head alone.
fn turn_away(socket: Socket, refusal: &Refusal) {
    if socket.set_nonblocking().is_err() {
        return;
    }
    let mut scratch = [0u8; 2048];
    let received = socket.read_now(&mut scratch);
    let head_only = scratch[..received].starts_with(b"HEAD ");
    let _ = Response::refusal(refusal).write_to(&socket, Version::Http11, head_only, false);
    socket.shutdown(Shutdown::Write);
    // Bounded: this runs on the accept loop, which a fast sender must not hold.
    for _ in 0..TURN_AWAY_READS {
        if socket.read_now(&mut scratch) == 0 {
            break;
        }
    }
}
