//! Time limits and a count limit on connections, enforced from outside tiny_http.
//!
//! tiny_http gives every accepted connection a thread and two descriptors and then waits on it
//! for as long as the client likes: it has no header timeout, no keep-alive timeout, no limit on
//! connections and no way to close one from outside. A client that opens a connection and
//! trickles its headers a byte at a time (slowloris), or sends a request line and goes silent,
//! or just opens hundreds of connections, would hold those threads forever.
//!
//! So a watch thread scans the process's own sockets twice a second (`own_sockets`) and closes,
//! with `shutdown`, the connections that break a rule; tiny_http's thread then sees the end of
//! the stream and finishes the connection itself. Each connection is either *busy* (a request
//! from that peer is being handled: the dispatch loop registers it through [`Connections::begin`]
//! before handing it to a handler) or *idle* (waiting for, or receiving, a request head). The
//! rules:
//! - idle for longer than `--request-timeout`: closed. This is the header timeout and the
//!   keep-alive timeout at once. A connection whose peer sent something within the last second
//!   is spared for up to two more seconds, so a request that has just arrived but is not yet
//!   dispatched is not cut off (a client trickling its head gains those two seconds only),
//!   and one with unread bytes (a request waiting for a tiny_http thread) gets twice the time.
//! - more idle connections than `--max-connections`: those that never completed a request,
//!   then the longest idle, are closed at once.
//!   (Busy ones are bounded by `handler_slots`.)
//! - a push still receiving its body after `--push-timeout`: closed, so a phone that trickles
//!   a body, or vanished mid-body without a FIN, cannot hold a handler for long.
//! - a request pipelined behind an open stream on the same connection: that connection is
//!   closed, since tiny_http would hold the request (and its handler) until the endless stream
//!   ends.
//!
//! Shutting a connection down frees it whenever tiny_http's thread is blocked on the socket.
//! One case is not: a request line with a version above HTTP/1.1 (`GET / HTTP/2.0`, the
//! HTTP/2 preface `PRI * HTTP/2.0`) makes that thread wait, while holding the request, for the
//! request's own response slot before it can write its 505, which never happens. Nothing
//! outside tiny_http can release it. Such connections stay open after the shutdown; the watch
//! counts them, and when more than [`MAX_STUCK`] have piled up it exits the process non-zero
//! so that the service manager starts a clean one (the same policy as `absurd_bodies`). A
//! request queued inside tiny_http while dispatch is blocked looks the same (its connection
//! is idle to the watch and stays open after the shutdown until dispatch gets to it), so
//! nothing counts as stuck while dispatch is blocked or was within [`STUCK_AFTER`]
//! (`dispatch_stalls`).
//!
//! The same scan finds connections stranded in tiny_http's pool queue (`pool_nudge`).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::dispatch_stalls::DispatchStalls;
use crate::own_sockets::{self, OwnSocket, Scanner};
use crate::pool_nudge::{self, StrandedConnections};

/// Time between two scans: the granularity of every limit here.
pub const SCAN_PERIOD: Duration = Duration::from_millis(500);
/// A connection whose peer sent data this recently is not closed as idle yet (see above)...
const JUST_ACTIVE: Duration = Duration::from_secs(1);
/// ...unless it is this far past the request timeout.
const ACTIVE_GRACE: Duration = Duration::from_secs(2);
/// A connection still open this long after its shutdown is stuck in tiny_http for good.
const STUCK_AFTER: Duration = Duration::from_secs(30);
/// Stuck connections (one thread and two descriptors each) tolerated before a restart.
pub const MAX_STUCK: usize = 64;
/// How often the counts of closed connections are logged, when there are any.
const REPORT_PERIOD: Duration = Duration::from_secs(60);

/// What a busy connection is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    Stream,
    /// A request with a body (a push, or anything else that sends one), which must have been
    /// received, or discarded, by `deadline`.
    Upload {
        deadline: Instant,
    },
    Other,
}

/// The limits enforced.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub request_timeout: Duration,
    pub max_idle: usize,
}

/// Requests per peer, shared by the dispatch loop, the handlers and the watch.
#[derive(Debug)]
pub struct Connections {
    peers: Mutex<HashMap<SocketAddr, PeerState>>,
    limits: Limits,
    stalls: Arc<DispatchStalls>,
}

/// What is known of one connection (peers are connections: the address includes the port).
/// Kept after its last request ends, for the idle clock, until the connection is gone: a
/// kept-alive pusher is busy a millisecond in every 66, so a scan would nearly always find it
/// idle and could not tell when it last was busy.
#[derive(Debug, Clone)]
struct PeerState {
    requests: usize,
    streams: usize,
    deadlines: Vec<Instant>,
    close: bool,
    /// Closed at the next scan even once idle: the connection of a deleted device's viewer or
    /// pusher, whose handler may end before the scan comes.
    close_soon: bool,
    /// When a request last began or ended.
    last_active: Instant,
}

/// A peer as the watch sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Busy { close_now: bool },
    IdleSince(Instant),
}

/// One registered request; unregisters itself when dropped (also when its handler unwinds).
#[derive(Debug)]
pub struct InProgress {
    connections: Arc<Connections>,
    peer: SocketAddr,
    work: Work,
}

impl InProgress {
    /// Moves an upload's deadline: a streaming push earns more time with every frame.
    pub fn extend_deadline(&mut self, deadline: Instant) {
        let Work::Upload { deadline: current } = &mut self.work else {
            return;
        };
        let mut peers = self.connections.peers.lock();
        if let Some(entry) = peers.get_mut(&self.peer) {
            if let Some(slot) = entry.deadlines.iter_mut().find(|d| **d == *current) {
                *slot = deadline;
            }
        }
        *current = deadline;
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        let mut peers = self.connections.peers.lock();
        let Some(entry) = peers.get_mut(&self.peer) else {
            return;
        };
        entry.last_active = Instant::now();
        entry.requests = entry.requests.saturating_sub(1);
        match self.work {
            Work::Stream => entry.streams = entry.streams.saturating_sub(1),
            Work::Upload { deadline } => {
                if let Some(index) = entry.deadlines.iter().position(|d| *d == deadline) {
                    entry.deadlines.swap_remove(index);
                }
            }
            Work::Other => {}
        }
        if entry.requests == 0 {
            entry.close = false;
        }
    }
}

/// What [`Connections::begin`] found.
#[derive(Debug)]
pub struct Begun {
    /// `None` for a request with no peer address (nothing to watch).
    pub in_progress: Option<InProgress>,
    /// The same connection already has a stream open: this request can never be answered,
    /// and the connection has been marked for closing.
    pub behind_stream: bool,
}

impl Connections {
    pub fn new(limits: Limits, stalls: Arc<DispatchStalls>) -> Arc<Connections> {
        Arc::new(Connections {
            peers: Mutex::new(HashMap::new()),
            limits,
            stalls,
        })
    }

    /// Has the watch close these peers' connections at its next scan (within half a second),
    /// busy or not: how a deleted device's viewers and streaming pusher are disconnected,
    /// wherever their handler threads are blocked.
    pub fn close(&self, peers: &[SocketAddr]) {
        let mut known = self.peers.lock();
        for peer in peers {
            if let Some(entry) = known.get_mut(peer) {
                entry.close_soon = true;
            }
        }
    }

    /// Connections that have sent a request and were not yet found closed by the watch's
    /// scan (twice a second): an estimate of the connections open now.
    pub fn count(&self) -> usize {
        self.peers.lock().len()
    }

    /// Registers a request from `peer` as in progress until the returned guard is dropped.
    pub fn begin(self: &Arc<Self>, peer: Option<SocketAddr>, work: Work) -> Begun {
        let Some(peer) = peer else {
            return Begun {
                in_progress: None,
                behind_stream: false,
            };
        };
        let now = Instant::now();
        let mut peers = self.peers.lock();
        let entry = peers.entry(peer).or_insert_with(|| PeerState {
            requests: 0,
            streams: 0,
            deadlines: Vec::new(),
            close: false,
            close_soon: false,
            last_active: now,
        });
        entry.last_active = now;
        let behind_stream = entry.streams > 0;
        if behind_stream {
            entry.close = true;
        }
        entry.requests += 1;
        match work {
            Work::Stream => entry.streams += 1,
            Work::Upload { deadline } => entry.deadlines.push(deadline),
            Work::Other => {}
        }
        Begun {
            in_progress: Some(InProgress {
                connections: Arc::clone(self),
                peer,
                work,
            }),
            behind_stream,
        }
    }

    /// Every known peer: busy (and whether to close it now) or idle since when.
    fn peer_states(&self, now: Instant) -> HashMap<SocketAddr, Seen> {
        self.peers
            .lock()
            .iter()
            .map(|(peer, state)| {
                let seen = if state.close_soon {
                    Seen::Busy { close_now: true }
                } else if state.requests > 0 {
                    let overdue = state.deadlines.iter().any(|deadline| *deadline <= now);
                    Seen::Busy {
                        close_now: state.close || overdue,
                    }
                } else {
                    Seen::IdleSince(state.last_active)
                };
                (*peer, seen)
            })
            .collect()
    }

    /// Forgets idle peers whose connection is gone.
    fn forget_departed(&self, sockets: &[OwnSocket]) {
        let connected: HashSet<SocketAddr> = sockets.iter().map(|socket| socket.peer).collect();
        self.peers
            .lock()
            .retain(|peer, state| state.requests > 0 || connected.contains(peer));
    }

    /// Starts the watch thread, which runs for as long as the process does. `listen` is the
    /// relay's own address, for pool nudges.
    pub fn start_watch(self: &Arc<Self>, listen: SocketAddr, stack_bytes: usize) {
        let connections = Arc::clone(self);
        let started = thread::Builder::new()
            .name("sp-conn-watch".into())
            .stack_size(stack_bytes)
            .spawn(move || connections.watch(own_sockets::reachable(listen)));
        if let Err(error) = started {
            log::error!(
                "cannot start the connection watch thread; idle connections will not be \
                 closed: {error}"
            );
        }
    }

    fn watch(&self, own_address: SocketAddr) {
        let mut scanner = Scanner::new();
        let mut stranded = StrandedConnections::default();
        let mut idle_since: HashMap<u64, Instant> = HashMap::new();
        let mut closed = ClosedCounts::default();
        // Connections already shut down, which tiny_http has yet to close, and since when.
        let mut shut: HashMap<u64, Instant> = HashMap::new();
        let mut warned = false;
        loop {
            thread::sleep(SCAN_PERIOD);
            let scan = match scanner.scan() {
                Ok(scan) => scan,
                Err(error) => {
                    if !warned {
                        log::warn!(
                            "cannot list this process's connections ({error}); idle \
                             connections are not closed until it can"
                        );
                        warned = true;
                    }
                    continue;
                }
            };
            warned = false;
            shut.retain(|inode, _| scan.all_sockets.contains(inode));
            // The relay's own short-lived connections to itself (nudges, probes) are not
            // clients, and connections already shut down are no longer served.
            let sockets: Vec<OwnSocket> = scan
                .connections
                .into_iter()
                .filter(|socket| socket.peer != own_address && !shut.contains_key(&socket.inode))
                .collect();
            let now = Instant::now();
            if !self.stalls.within(STUCK_AFTER) {
                exit_if_too_many_stuck(&shut, now);
            }
            let peers = self.peer_states(now);
            let verdicts = self.judge(&sockets, &peers, &mut idle_since, now);
            self.forget_departed(&sockets);
            for (socket, reason) in verdicts {
                if own_sockets::shutdown_connection(socket) {
                    shut.insert(socket.inode, now);
                    log::debug!(
                        "closed the connection from {}: {}",
                        socket.peer,
                        reason.text()
                    );
                    closed.count(reason);
                }
            }
            // Last, as nudges take time and the verdicts above use the scan: a connection with
            // a request in progress is being read, whatever its unread bytes say.
            let waiting: Vec<OwnSocket> = sockets
                .into_iter()
                .filter(|socket| {
                    !peers.contains_key(&socket.peer) && !shut.contains_key(&socket.inode)
                })
                .collect();
            pool_nudge::nudge_pool(own_address, stranded.update(&waiting));
            closed.report_if_due(now);
        }
    }

    /// Decides which connections to close and why. `idle_since` remembers, per connection,
    /// since when a scan has seen it idle; it is pruned to the connections seen.
    fn judge<'a>(
        &self,
        sockets: &'a [OwnSocket],
        peers: &HashMap<SocketAddr, Seen>,
        idle_since: &mut HashMap<u64, Instant>,
        now: Instant,
    ) -> Vec<(&'a OwnSocket, CloseReason)> {
        let mut verdicts = Vec::new();
        let mut idle = Vec::new();
        let mut seen = HashMap::with_capacity(sockets.len());
        for socket in sockets {
            let last_active = match peers.get(&socket.peer) {
                Some(Seen::Busy { close_now }) => {
                    if *close_now {
                        verdicts.push((socket, CloseReason::Busy));
                    }
                    continue;
                }
                Some(Seen::IdleSince(last_active)) => Some(*last_active),
                None => None,
            };
            let first_seen = *idle_since.get(&socket.inode).unwrap_or(&now);
            seen.insert(socket.inode, first_seen);
            let since = last_active.map_or(first_seen, |last| last.max(first_seen));
            let idle_for = now.saturating_duration_since(since);
            // Unread bytes mean the request is there but no tiny_http thread has
            // taken the connection yet (`pool_nudge` sees to it): not the client's
            // fault, so it gets the timeout once more.
            let timeout = if socket.unread > 0 {
                self.limits.request_timeout * 2
            } else {
                self.limits.request_timeout
            };
            let quiet = socket.quiet_for >= JUST_ACTIVE;
            if (idle_for >= timeout && quiet) || idle_for >= timeout + ACTIVE_GRACE {
                verdicts.push((socket, CloseReason::Idle));
            } else {
                idle.push((last_active.is_some(), since, socket));
            }
        }
        *idle_since = seen;
        if idle.len() > self.limits.max_idle {
            // Connections that never completed a request go first (a flood of them must not
            // push out the phones that push every 66 ms), then the longest idle.
            idle.sort_by_key(|(served, since, _)| (*served, *since));
            let excess = idle.len() - self.limits.max_idle;
            verdicts.extend(
                idle.into_iter()
                    .take(excess)
                    .map(|(_, _, socket)| (socket, CloseReason::TooMany)),
            );
        }
        verdicts
    }
}

/// Exits when more than [`MAX_STUCK`] shut-down connections have stayed open past
/// [`STUCK_AFTER`] (see the module docs).
fn exit_if_too_many_stuck(shut: &HashMap<u64, Instant>, now: Instant) {
    let stuck = count_stuck(shut, now);
    if stuck > MAX_STUCK {
        log::error!(
            "{stuck} connections stay open after being closed: tiny_http threads that cannot \
             be freed (for example after HTTP/2.0 request lines); exiting so that the service \
             manager starts a clean relay"
        );
        std::process::exit(1);
    }
}

fn count_stuck(shut: &HashMap<u64, Instant>, now: Instant) -> usize {
    shut.values()
        .filter(|since| now.saturating_duration_since(**since) >= STUCK_AFTER)
        .count()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CloseReason {
    Idle,
    TooMany,
    /// A push past its deadline, or a request pipelined behind a stream.
    Busy,
}

impl CloseReason {
    fn text(self) -> &'static str {
        match self {
            CloseReason::Idle => "no complete request within --request-timeout",
            CloseReason::TooMany => "more idle connections than --max-connections",
            CloseReason::Busy => "push over --push-timeout, or a request pipelined behind a stream",
        }
    }
}

/// Closed connections since the last report, logged once a period so that an attack of
/// thousands of connections makes one line a minute rather than thousands.
#[derive(Debug)]
struct ClosedCounts {
    idle: usize,
    too_many: usize,
    busy: usize,
    since: Instant,
}

impl Default for ClosedCounts {
    fn default() -> Self {
        ClosedCounts {
            idle: 0,
            too_many: 0,
            busy: 0,
            since: Instant::now(),
        }
    }
}

impl ClosedCounts {
    fn count(&mut self, reason: CloseReason) {
        match reason {
            CloseReason::Idle => self.idle += 1,
            CloseReason::TooMany => self.too_many += 1,
            CloseReason::Busy => self.busy += 1,
        }
    }

    fn report_if_due(&mut self, now: Instant) {
        if now.saturating_duration_since(self.since) < REPORT_PERIOD {
            return;
        }
        if self.idle + self.too_many + self.busy > 0 {
            log::info!(
                "closed connections in the last minute: {} idle past --request-timeout, {} over \
                 --max-connections, {} pushes past --push-timeout or pipelined behind a stream",
                self.idle,
                self.too_many,
                self.busy
            );
        }
        *self = ClosedCounts::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn socket(inode: u64, port: u16, quiet_ms: u64) -> OwnSocket {
        OwnSocket {
            fd: 3,
            inode,
            peer: SocketAddr::from(([127, 0, 0, 1], port)),
            unread: 0,
            quiet_for: Duration::from_millis(quiet_ms),
        }
    }

    fn connections(max_idle: usize) -> Arc<Connections> {
        Connections::new(
            Limits {
                request_timeout: Duration::from_secs(10),
                max_idle,
            },
            Arc::default(),
        )
    }

    fn reasons(verdicts: &[(&OwnSocket, CloseReason)]) -> Vec<(u64, CloseReason)> {
        let mut found: Vec<_> = verdicts.iter().map(|(s, r)| (s.inode, *r)).collect();
        found.sort_by_key(|(inode, _)| *inode);
        found
    }

    #[test]
    fn idle_connections_are_closed_after_the_request_timeout_unless_just_active() {
        let watch = connections(100);
        let start = Instant::now();
        let sockets = [socket(1, 1001, 5_000), socket(2, 1002, 100)];
        let mut idle_since = HashMap::new();
        let none = HashMap::new();
        assert!(watch
            .judge(&sockets, &none, &mut idle_since, start)
            .is_empty());
        let later = start + Duration::from_secs(11);
        let verdicts = watch.judge(&sockets, &none, &mut idle_since, later);
        assert_eq!(reasons(&verdicts), vec![(1, CloseReason::Idle)]);
        // A trickling client is always "just active", but gains only the grace period.
        let after_grace = start + Duration::from_secs(10) + ACTIVE_GRACE;
        let verdicts = watch.judge(&sockets, &none, &mut idle_since, after_grace);
        assert_eq!(
            reasons(&verdicts),
            vec![(1, CloseReason::Idle), (2, CloseReason::Idle)]
        );
    }

    #[test]
    fn busy_connections_are_not_idle_and_their_idle_clock_restarts() {
        let watch = connections(100);
        let start = Instant::now();
        let sockets = [socket(1, 1001, 5_000)];
        let mut idle_since = HashMap::new();
        let none = HashMap::new();
        watch.judge(&sockets, &none, &mut idle_since, start);
        let peer = sockets[0].peer;
        let busy = HashMap::from([(peer, Seen::Busy { close_now: false })]);
        let later = start + Duration::from_secs(11);
        assert!(watch
            .judge(&sockets, &busy, &mut idle_since, later)
            .is_empty());
        // Idle again: the clock starts over from now.
        let verdicts = watch.judge(&sockets, &none, &mut idle_since, later);
        assert!(verdicts.is_empty());
        let much_later = later + Duration::from_secs(11);
        let verdicts = watch.judge(&sockets, &none, &mut idle_since, much_later);
        assert_eq!(reasons(&verdicts), vec![(1, CloseReason::Idle)]);
    }

    #[test]
    fn a_kept_alive_connection_is_idle_only_since_its_last_request() {
        // A pusher's connection is busy for a moment in every frame: scans find it idle,
        // but its last request ended just now.
        let watch = connections(100);
        let start = Instant::now();
        let sockets = [socket(1, 1001, 5_000)];
        let peer = sockets[0].peer;
        let mut idle_since = HashMap::new();
        for second in 0..30 {
            let now = start + Duration::from_secs(second);
            let last_request =
                start + Duration::from_secs(second).saturating_sub(Duration::from_millis(60));
            let peers = HashMap::from([(peer, Seen::IdleSince(last_request.max(start)))]);
            assert!(watch
                .judge(&sockets, &peers, &mut idle_since, now)
                .is_empty());
        }
        // Then it stops pushing.
        let last = start + Duration::from_secs(29);
        let peers = HashMap::from([(peer, Seen::IdleSince(last))]);
        let now = last + Duration::from_secs(11);
        let verdicts = watch.judge(&sockets, &peers, &mut idle_since, now);
        assert_eq!(reasons(&verdicts), vec![(1, CloseReason::Idle)]);
    }

    #[test]
    fn peers_are_remembered_between_requests_and_forgotten_when_gone() {
        let watch = connections(100);
        let sockets = [socket(1, 1001, 0)];
        let peer = sockets[0].peer;
        let request = watch.begin(Some(peer), Work::Other);
        drop(request);
        let now = Instant::now();
        assert!(matches!(
            watch.peer_states(now).get(&peer),
            Some(Seen::IdleSince(_))
        ));
        watch.forget_departed(&sockets);
        assert!(watch.peer_states(now).contains_key(&peer));
        watch.forget_departed(&[]);
        assert!(watch.peer_states(now).is_empty());
    }

    #[test]
    fn the_longest_idle_connections_over_the_cap_are_closed() {
        let watch = connections(2);
        let start = Instant::now();
        let mut idle_since = HashMap::new();
        let none = HashMap::new();
        let first = [socket(1, 1001, 0), socket(2, 1002, 0)];
        watch.judge(&first, &none, &mut idle_since, start);
        let all = [
            socket(1, 1001, 0),
            socket(2, 1002, 0),
            socket(3, 1003, 0),
            socket(4, 1004, 0),
        ];
        let verdicts = watch.judge(&all, &none, &mut idle_since, start + SCAN_PERIOD);
        assert_eq!(
            reasons(&verdicts),
            vec![(1, CloseReason::TooMany), (2, CloseReason::TooMany)]
        );
    }

    #[test]
    fn over_the_cap_connections_that_never_sent_a_request_go_before_served_ones() {
        let watch = connections(2);
        let start = Instant::now();
        let mut idle_since = HashMap::new();
        let pusher = socket(1, 1001, 0);
        let none = HashMap::new();
        watch.judge(std::slice::from_ref(&pusher), &none, &mut idle_since, start);
        // A flood arrives; the pusher's last request ended just before.
        let now = start + Duration::from_secs(5);
        let all = [
            pusher.clone(),
            socket(2, 1002, 0),
            socket(3, 1003, 0),
            socket(4, 1004, 0),
        ];
        let peers = HashMap::from([(
            pusher.peer,
            Seen::IdleSince(start + Duration::from_millis(4_950)),
        )]);
        let verdicts = watch.judge(&all, &peers, &mut idle_since, now);
        let closed = reasons(&verdicts);
        assert_eq!(closed.len(), 2);
        assert!(closed.iter().all(|(inode, _)| *inode != 1), "{closed:?}");
    }

    #[test]
    fn overdue_pushes_and_requests_behind_a_stream_are_closed() {
        let watch = connections(100);
        let now = Instant::now();
        let pusher: SocketAddr = "127.0.0.1:2001".parse().unwrap();
        let viewer: SocketAddr = "127.0.0.1:2002".parse().unwrap();
        let push = watch.begin(Some(pusher), Work::Upload { deadline: now });
        let stream = watch.begin(Some(viewer), Work::Stream);
        assert!(!stream.behind_stream);
        let states = watch.peer_states(now);
        assert_eq!(states.get(&pusher), Some(&Seen::Busy { close_now: true }));
        assert_eq!(states.get(&viewer), Some(&Seen::Busy { close_now: false }));
        let pipelined = watch.begin(Some(viewer), Work::Other);
        assert!(pipelined.behind_stream);
        assert_eq!(
            watch.peer_states(now).get(&viewer),
            Some(&Seen::Busy { close_now: true })
        );
        drop(push);
        drop(pipelined);
        drop(stream);
        let states = watch.peer_states(now);
        assert!(
            states
                .values()
                .all(|seen| matches!(seen, Seen::IdleSince(_))),
            "guards unregister"
        );
    }

    #[test]
    fn connections_open_long_after_their_shutdown_count_as_stuck() {
        let base = Instant::now();
        let shut = HashMap::from([(1, base), (2, base + STUCK_AFTER)]);
        let now = base + STUCK_AFTER + Duration::from_secs(1);
        assert_eq!(count_stuck(&shut, now), 1);
    }

    #[test]
    fn a_push_with_time_left_is_not_closed() {
        let watch = connections(100);
        let now = Instant::now();
        let pusher: SocketAddr = "127.0.0.1:2001".parse().unwrap();
        let _push = watch.begin(
            Some(pusher),
            Work::Upload {
                deadline: now + Duration::from_secs(5),
            },
        );
        assert_eq!(
            watch.peer_states(now).get(&pusher),
            Some(&Seen::Busy { close_now: false })
        );
    }
}
