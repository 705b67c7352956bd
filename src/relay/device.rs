//! One device: its latest frame, the lock and condvar its viewers sleep on, and its counters.
//!
//! The whole fan-out is here. A push swaps in a new `Arc<[u8]>` under the lock and wakes every
//! viewer; each viewer clones the `Arc` (a reference count, not the bytes), lets go of the lock
//! and writes to its own socket. A viewer remembers only the sequence number of the last frame
//! it sent, so a slow viewer simply gets the newest frame next time and never builds a queue,
//! and nothing a viewer does can hold up the pusher or another viewer: the lock is never held
//! across I/O. Callers never see the lock; they call [`Device::publish`] and [`Viewer::next`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::relay::device_id::DeviceId;
use crate::relay::events::Kind;
use crate::relay::health::Health;
use crate::relay::jpeg::Dimensions;
use crate::relay::mjpeg::Part;
use crate::relay::rate_meter::RateMeter;
use crate::relay::settings::Settings;
use crate::text::decimal::Hundredths;

/// Ends a viewer's or pusher's connection from outside its thread, for
/// `DELETE /api/devices/{id}`: the web layer hands one in with each of them.
pub trait HangUp: Send + Sync {
    fn hang_up(&self);
}

/// Who is at the other end of a viewer's or streaming pusher's connection.
#[derive(Clone, Default)]
pub struct Peer {
    pub addr: Option<SocketAddr>,
    line: Option<Arc<dyn HangUp>>,
}

impl Peer {
    pub fn new(addr: SocketAddr, line: Arc<dyn HangUp>) -> Peer {
        Peer {
            addr: Some(addr),
            line: Some(line),
        }
    }

    fn is(&self, addr: Option<SocketAddr>) -> bool {
        addr.is_some() && self.addr == addr
    }
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.addr {
            Some(addr) => write!(f, "{addr}"),
            None => f.write_str("a peer"),
        }
    }
}

/// One published JPEG, stored as the multipart part viewers send. Cloning shares the bytes.
#[derive(Debug, Clone)]
pub struct Frame {
    pub part: Part,
    pub seq: u64,
    pub received_at: Instant,
    pub dimensions: Option<Dimensions>,
}

/// A device known to the relay.
#[derive(Debug)]
pub struct Device {
    id: DeviceId,
    offline_after: Duration,
    state: Mutex<State>,
    new_frame: Condvar,
    /// Wakes the phone's long-poll (`Device::wait_for_viewers`) when the viewer count
    /// changes; apart from `new_frame` so that viewers are not woken for it.
    viewers_changed: Condvar,
}

/// Everything guarded by the device lock. 64-bit counters live here rather than in atomics:
/// 32-bit MIPS routers have no 64-bit atomic instructions.
/// The least time between two alerts of one kind for one device (see `State::alerted_at`).
const ALERT_QUIET: Duration = Duration::from_secs(600);

#[derive(Debug)]
struct State {
    latest: Option<Frame>,
    /// Sequence number of the last frame published. Kept apart from `latest`, which may be
    /// dropped to make room (see `Device::drop_frame`), so that a viewer never mistakes the
    /// next frame for one it has seen.
    seq: u64,
    frames_received: u64,
    bytes_received: u64,
    frames_sent: u64,
    /// Frames viewers never got because a newer one replaced them first.
    frames_skipped: u64,
    /// Pushes refused for their content (see `Device::count_bad_frame`).
    bad_frames: u64,
    /// Who pushed the latest frame, and how.
    pusher: Option<SocketAddr>,
    push_mode: PushMode,
    /// Streaming pushes connected now: the device stays online while one is.
    streams: usize,
    input_rate: RateMeter,
    viewers: usize,
    /// Where the viewers and streaming pushers are connected from, for disconnecting them
    /// (`Device::forget`).
    viewer_peers: Vec<Peer>,
    stream_peers: Vec<Peer>,
    /// Whether the last online/offline log line said online.
    announced_online: bool,
    /// Set when the registry forgets this device; a push that raced with that must retry.
    evicted: bool,
    /// The latest health report, when it came, and the settings the phone says it runs with.
    health: Option<(Health, Instant)>,
    effective: Option<Settings>,
    /// Whether `battery_low` was announced and the battery has not recovered since.
    battery_low_announced: bool,
    /// When each alert was last raised (battery low, stopped charging): a phone whose report
    /// flaps (a loose cable, or a client sending made-up reports) raises each at most once per
    /// [`ALERT_QUIET`], not with every other push.
    alerted_at: [Option<Instant>; 2],
    /// Counts the phone's long-polls; a new one makes the older give way, so there is at
    /// most one per device.
    waiter: u32,
}

/// How frames reach a device: one JPEG per request, or many in one long request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushMode {
    Single,
    Stream,
}

impl PushMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PushMode::Single => "single",
            PushMode::Stream => "stream",
        }
    }
}

/// The push raced with eviction and went to a device nobody can see any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evicted;

/// The device already has its maximum number of viewers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewersFull;

/// What a push changed, for logging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub seq: u64,
    pub came_online: bool,
}

/// How little a device's frame matters when the memory budget needs room, least first
/// (the order frames are dropped in; see `Registry::reserve`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Expendable {
    /// No push for `--offline-after`: its viewers are shown the no-signal picture anyway.
    Offline,
    /// Online, nobody watching, and it has pushed a single frame so far.
    PushedOnce,
    /// Online and unwatched; gives way only to a device that is watched.
    Unwatched,
}

/// What the housekeeping pass decided about a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SweepOutcome {
    pub went_offline: bool,
    pub evicted: bool,
}

/// A device's figures at one moment, for the status endpoint.
#[derive(Debug, Clone)]
pub struct DeviceStatus {
    pub id: DeviceId,
    pub online: bool,
    pub frames_received: u64,
    pub input_fps: Hundredths,
    pub bytes_received: u64,
    pub last_frame_age: Option<Duration>,
    pub last_frame_bytes: Option<usize>,
    pub dimensions: Option<Dimensions>,
    pub viewers: usize,
    pub frames_sent: u64,
    pub frames_skipped: u64,
    pub bad_frames: u64,
    /// How the latest frame came, and from where (`None` before the first frame).
    pub push_mode: Option<PushMode>,
    pub pusher: Option<SocketAddr>,
    /// The phone's latest health report and its age.
    pub health: Option<(Health, Duration)>,
    /// The settings the phone reported running with.
    pub effective: Option<Settings>,
}

impl Device {
    pub fn new(id: DeviceId, offline_after: Duration) -> Device {
        Device {
            id,
            offline_after,
            state: Mutex::new(State {
                latest: None,
                seq: 0,
                frames_received: 0,
                bytes_received: 0,
                frames_sent: 0,
                frames_skipped: 0,
                bad_frames: 0,
                pusher: None,
                push_mode: PushMode::Single,
                streams: 0,
                input_rate: RateMeter::default(),
                viewers: 0,
                viewer_peers: Vec::new(),
                stream_peers: Vec::new(),
                announced_online: false,
                evicted: false,
                health: None,
                effective: None,
                battery_low_announced: false,
                alerted_at: [None; 2],
                waiter: 0,
            }),
            new_frame: Condvar::new(),
            viewers_changed: Condvar::new(),
        }
    }

    pub fn id(&self) -> &DeviceId {
        &self.id
    }

    /// Makes `part` the latest frame and wakes every viewer.
    pub fn publish(
        &self,
        part: Part,
        dimensions: Option<Dimensions>,
        from: (Option<SocketAddr>, PushMode),
        now: Instant,
    ) -> Result<Published, Evicted> {
        let mut state = self.state.lock();
        if state.evicted {
            return Err(Evicted);
        }
        (state.pusher, state.push_mode) = from;
        state.seq += 1;
        let seq = state.seq;
        state.frames_received += 1;
        state.bytes_received += part.jpeg().len() as u64;
        state.input_rate.record(now);
        let came_online = !state.announced_online;
        state.announced_online = true;
        if let Some(charge) = part.charge() {
            charge.publish();
        }
        // The previous frame's bytes are freed here, or when the last viewer still writing
        // them drops its clone: until then they count as in flight.
        let previous = state.latest.replace(Frame {
            part,
            seq,
            received_at: now,
            dimensions,
        });
        drop(state);
        self.new_frame.notify_all();
        retire(previous);
        Ok(Published { seq, came_online })
    }

    /// Marks a streaming push from `peer` as connected until the returned guard is dropped.
    pub fn stream_connected(self: &Arc<Self>, peer: Peer) -> ConnectedStream {
        let mut state = self.state.lock();
        state.streams += 1;
        let addr = peer.addr;
        state.stream_peers.push(peer);
        ConnectedStream(Arc::clone(self), addr)
    }

    /// Counts a push refused for its content: not a complete JPEG, too large, empty or cut off.
    pub fn count_bad_frame(&self) {
        self.state.lock().bad_frames += 1;
    }

    /// Whether the device holds a frame.
    pub fn has_frame(&self) -> bool {
        self.state.lock().latest.is_some()
    }

    /// Whether anyone watches the device now.
    pub fn is_watched(&self) -> bool {
        self.state.lock().viewers > 0
    }

    /// Whether the device's frame may be dropped to make room in the memory budget, how
    /// little it matters, since when it is there and how many bytes it holds. An online device
    /// that is watched or streaming is never expendable.
    pub fn expendable(
        &self,
        now: Instant,
        for_watched: bool,
    ) -> Option<(Expendable, Instant, usize)> {
        let state = self.state.lock();
        let frame = state.latest.as_ref()?;
        let held = (frame.received_at, frame.part.buffer().len());
        let rank = if !self.is_online(&state, now) {
            Expendable::Offline
        } else if state.viewers > 0 || state.streams > 0 {
            return None;
        } else if state.frames_received == 1 {
            Expendable::PushedOnce
        } else if for_watched {
            Expendable::Unwatched
        } else {
            return None;
        };
        Some((rank, held.0, held.1))
    }

    /// Drops the latest frame to make room in the memory budget. A device nobody watches is
    /// marked evicted too (`true`): the registry forgets it, and a push that raced with this
    /// makes it anew. A watched one stays, its viewers shown the no-signal picture, as they
    /// are anyway for an offline device.
    pub fn drop_frame(&self) -> bool {
        let mut state = self.state.lock();
        let frame = state.latest.take();
        let forgotten = state.viewers == 0 && state.streams == 0;
        if forgotten {
            state.evicted = true;
        }
        drop(state);
        retire(frame);
        forgotten
    }

    /// The latest frame, however old.
    pub fn latest(&self) -> Option<Frame> {
        self.state.lock().latest.clone()
    }

    /// Adds a viewer if there is room. The registry calls this under its own lock, so a device
    /// cannot be evicted between being found and being watched.
    pub fn add_viewer(
        self: &Arc<Self>,
        limit: usize,
        peer: Peer,
    ) -> Result<(Viewer, usize), ViewersFull> {
        let mut state = self.state.lock();
        if state.viewers >= limit {
            return Err(ViewersFull);
        }
        state.viewers += 1;
        let addr = peer.addr;
        state.viewer_peers.push(peer);
        let viewers = state.viewers;
        drop(state);
        self.viewers_changed.notify_all();
        let viewer = Viewer {
            device: Arc::clone(self),
            peer: addr,
            last_seq: 0,
            unreported_sends: 0,
        };
        Ok((viewer, viewers))
    }

    pub fn status(&self, now: Instant) -> DeviceStatus {
        let state = self.state.lock();
        let latest = state.latest.as_ref();
        DeviceStatus {
            id: self.id.clone(),
            online: self.is_online(&state, now),
            frames_received: state.frames_received,
            input_fps: state.input_rate.per_second(now),
            bytes_received: state.bytes_received,
            last_frame_age: latest.map(|f| now.saturating_duration_since(f.received_at)),
            last_frame_bytes: latest.map(|f| f.part.jpeg().len()),
            dimensions: latest.and_then(|f| f.dimensions),
            viewers: state.viewers,
            frames_sent: state.frames_sent,
            frames_skipped: state.frames_skipped,
            bad_frames: state.bad_frames,
            push_mode: latest.map(|_| state.push_mode),
            pusher: state.pusher,
            health: state
                .health
                .clone()
                .map(|(health, at)| (health, now.saturating_duration_since(at))),
            effective: state.effective.clone(),
        }
    }

    /// Viewers watching now.
    pub fn viewers(&self) -> usize {
        self.state.lock().viewers
    }

    /// Keeps a health report and the settings the phone runs with, and says which alerts it
    /// raises: the battery fell below `battery_low` percent (once, until it is back at or
    /// above it), or the phone stopped charging.
    pub fn report(
        &self,
        health: Option<Health>,
        effective: Option<Settings>,
        battery_low: u8,
        now: Instant,
    ) -> Vec<Kind> {
        let mut state = self.state.lock();
        let mut alerts = Vec::new();
        if let Some(effective) = effective {
            state.effective = Some(effective);
        }
        let Some(health) = health else {
            return alerts;
        };
        let mut raise = |state: &mut State, index: usize, kind: Kind| {
            let quiet = state.alerted_at[index]
                .is_none_or(|at| now.saturating_duration_since(at) >= ALERT_QUIET);
            if quiet {
                state.alerted_at[index] = Some(now);
                alerts.push(kind);
            }
        };
        if let Some(battery) = health.battery {
            if battery < battery_low && !state.battery_low_announced {
                state.battery_low_announced = true;
                raise(&mut state, 0, Kind::BatteryLow);
            } else if battery >= battery_low {
                state.battery_low_announced = false;
            }
        }
        let was_charging = state.health.as_ref().and_then(|(h, _)| h.charging);
        if was_charging == Some(true) && health.charging == Some(false) {
            raise(&mut state, 1, Kind::NotCharging);
        }
        state.health = Some((health, now));
        alerts
    }

    /// Waits until whether the device is watched differs from `watched`, `timeout` passes,
    /// a newer long-poll of the device starts, or the device is forgotten; returns the viewer
    /// count then. The phone holds one of these open so that it learns of a viewer at once.
    pub fn wait_for_viewers(&self, watched: bool, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut state = self.state.lock();
        state.waiter = state.waiter.wrapping_add(1);
        let mine = state.waiter;
        // The older long-poll, if any, answers now: a reloaded page must not wait for it.
        self.viewers_changed.notify_all();
        loop {
            if state.evicted || (state.viewers > 0) != watched || state.waiter != mine {
                return state.viewers;
            }
            if self
                .viewers_changed
                .wait_until(&mut state, deadline)
                .timed_out()
            {
                return state.viewers;
            }
        }
    }

    /// Notices a device going offline, and marks it evicted when it has been offline for
    /// `evict_after` with nobody watching. A device that never received a frame goes as soon
    /// as its last viewer does: waiting for a phone costs nothing once nobody waits.
    pub fn sweep(&self, now: Instant, evict_after: Duration) -> SweepOutcome {
        let mut state = self.state.lock();
        let mut outcome = SweepOutcome::default();
        if state.announced_online && !self.is_online(&state, now) {
            state.announced_online = false;
            outcome.went_offline = true;
        }
        let silent_for = state
            .latest
            .as_ref()
            .map(|f| now.saturating_duration_since(f.received_at));
        let forgettable = match silent_for {
            None => true,
            Some(silence) => silence >= evict_after,
        };
        if state.viewers == 0 && state.streams == 0 && forgettable {
            state.evicted = true;
            outcome.evicted = true;
        }
        outcome
    }

    /// Marks the device forgotten on request (`DELETE /api/devices/{id}`) and returns the
    /// connections to close: every viewer's and, if a stream is connected, the pusher's. A
    /// streaming pusher that sends another frame before its connection is closed finds the
    /// device forgotten and stops (`ConnectedStream::device_forgotten`) rather than making it
    /// anew.
    pub fn forget(&self) -> Vec<Arc<dyn HangUp>> {
        let mut state = self.state.lock();
        state.evicted = true;
        let lines = state
            .viewer_peers
            .iter()
            .chain(&state.stream_peers)
            .filter_map(|peer| peer.line.clone())
            .collect();
        drop(state);
        self.new_frame.notify_all();
        self.viewers_changed.notify_all();
        lines
    }

    fn is_online(&self, state: &State, now: Instant) -> bool {
        state.latest.as_ref().is_some_and(|f| {
            state.streams > 0 || now.saturating_duration_since(f.received_at) < self.offline_after
        })
    }
}

/// A frame that stopped being a device's latest: whoever still writes it holds its bytes as
/// in flight until done.
fn retire(frame: Option<Frame>) {
    if let Some(charge) = frame.as_ref().and_then(|frame| frame.part.charge()) {
        charge.retire();
    }
}

/// A streaming push connected to a device; see [`Device::stream_connected`].
#[derive(Debug)]
pub struct ConnectedStream(Arc<Device>, Option<SocketAddr>);

impl ConnectedStream {
    pub fn is_for(&self, device: &Arc<Device>) -> bool {
        Arc::ptr_eq(&self.0, device)
    }

    /// Whether the device was forgotten while this stream was connected. Housekeeping never
    /// forgets a device with a stream connected, so only a deletion does this.
    pub fn device_forgotten(&self) -> bool {
        self.0.state.lock().evicted
    }
}

impl Drop for ConnectedStream {
    fn drop(&mut self) {
        let mut state = self.0.state.lock();
        state.streams = state.streams.saturating_sub(1);
        if let Some(index) = state.stream_peers.iter().position(|p| p.is(self.1)) {
            state.stream_peers.swap_remove(index);
        }
    }
}

/// What a viewer should send next.
#[derive(Debug, Clone)]
pub enum Next {
    /// A frame this viewer has not seen.
    Fresh(Frame),
    /// Nothing new for a while: the same frame again, so the viewer's client sees bytes
    /// (Home Assistant drops a stream after 10 s of silence) and a departed viewer is noticed.
    Repeat(Frame),
    /// No frame yet, or the phone went away: send the placeholder picture.
    NoSignal,
    /// The device was deleted (`DELETE /api/devices/{id}`): end the stream.
    Gone,
}

/// One viewer's place at a device: the sequence number of the last frame it got.
#[derive(Debug)]
pub struct Viewer {
    device: Arc<Device>,
    peer: Option<SocketAddr>,
    last_seq: u64,
    /// Frames written since the device's `frames_sent` was last updated; folded in at the next
    /// lock, so counting costs no extra locking per frame.
    unreported_sends: u64,
}

impl Viewer {
    pub fn device_id(&self) -> &DeviceId {
        self.device.id()
    }

    /// What to send first, without waiting: the current frame if the device is online.
    pub fn first(&mut self) -> Next {
        let state = self.device.state.lock();
        let Some(frame) = &state.latest else {
            return Next::NoSignal;
        };
        // Even when it is too old to show, the current frame counts as seen: only a newer push
        // may end the no-signal picture.
        self.last_seq = frame.seq;
        if self.device.is_online(&state, Instant::now()) {
            Next::Fresh(frame.clone())
        } else {
            Next::NoSignal
        }
    }

    /// Counts one frame as delivered to this viewer.
    pub fn sent(&mut self) {
        self.unreported_sends += 1;
    }

    /// Waits until a frame newer than the last one sent arrives, or `idle` passes. With
    /// `not_before` (a viewer's `?fps=` cap) it first sleeps until then, so that it takes the
    /// newest frame at that moment instead of queueing the ones in between.
    pub fn next(&mut self, idle: Duration, not_before: Option<Instant>) -> Next {
        if let Some(not_before) = not_before {
            self.report_sends();
            let now = Instant::now();
            if not_before > now {
                std::thread::sleep(not_before - now);
            }
        }
        let deadline = Instant::now() + idle;
        let mut state = self.device.state.lock();
        state.frames_sent += std::mem::take(&mut self.unreported_sends);
        loop {
            // Housekeeping forgets only devices nobody watches, so for a viewer this means
            // a deletion.
            if state.evicted {
                return Next::Gone;
            }
            if let Some(frame) = &state.latest {
                if frame.seq > self.last_seq {
                    let skipped = frame.seq - self.last_seq - 1;
                    self.last_seq = frame.seq;
                    let frame = frame.clone();
                    state.frames_skipped += skipped;
                    return Next::Fresh(frame);
                }
            }
            if self
                .device
                .new_frame
                .wait_until(&mut state, deadline)
                .timed_out()
            {
                break;
            }
        }
        match &state.latest {
            Some(frame) if frame.seq > self.last_seq => {
                let skipped = frame.seq - self.last_seq - 1;
                self.last_seq = frame.seq;
                let frame = frame.clone();
                state.frames_skipped += skipped;
                Next::Fresh(frame)
            }
            Some(frame) if self.device.is_online(&state, Instant::now()) => {
                Next::Repeat(frame.clone())
            }
            _ => Next::NoSignal,
        }
    }

    fn report_sends(&mut self) {
        if self.unreported_sends > 0 {
            self.device.state.lock().frames_sent += std::mem::take(&mut self.unreported_sends);
        }
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let mut state = self.device.state.lock();
        state.frames_sent += self.unreported_sends;
        state.viewers -= 1;
        if let Some(index) = state.viewer_peers.iter().position(|p| p.is(self.peer)) {
            state.viewer_peers.swap_remove(index);
        }
        let remaining = state.viewers;
        drop(state);
        self.device.viewers_changed.notify_all();
        let peer = self
            .peer
            .map_or_else(|| "a viewer".to_string(), |peer| peer.to_string());
        log::info!(
            "{}: {peer} stopped watching ({remaining} viewers)",
            self.device.id()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    const SINGLE: (Option<SocketAddr>, PushMode) = (None, PushMode::Single);

    fn device(offline_after: Duration) -> Arc<Device> {
        Arc::new(Device::new(DeviceId::parse("cam").unwrap(), offline_after))
    }

    fn bytes(text: &str) -> Part {
        Part::from_jpeg(text.as_bytes(), None)
    }

    #[test]
    fn a_flapping_report_raises_each_alert_once_per_quiet_period() {
        let device = device(Duration::from_secs(10));
        let report = |text: &str, at: Instant| device.report(Health::parse(text), None, 20, at);
        let start = Instant::now();
        assert_eq!(report("battery=50;charging=1", start), []);
        assert_eq!(
            report("battery=10;charging=0", start),
            [Kind::BatteryLow, Kind::NotCharging]
        );
        // Back and forth, as a loose cable or made-up reports would go: nothing more.
        for _ in 0..5 {
            assert_eq!(report("battery=90;charging=1", start), []);
            assert_eq!(report("battery=10;charging=0", start), []);
        }
        // Once the quiet period is over, a new drop is news again.
        let later = start + ALERT_QUIET;
        assert_eq!(report("battery=90;charging=1", later), []);
        assert_eq!(
            report("battery=10;charging=0", later),
            [Kind::BatteryLow, Kind::NotCharging]
        );
    }

    #[test]
    fn a_viewer_shares_the_published_bytes() {
        let device = device(Duration::from_secs(10));
        let jpeg = bytes("one");
        device
            .publish(jpeg.clone(), None, SINGLE, Instant::now())
            .unwrap();
        let (mut viewer, count) = device.add_viewer(4, Peer::default()).unwrap();
        assert_eq!(count, 1);
        let Next::Fresh(frame) = viewer.first() else {
            panic!("expected the current frame");
        };
        assert!(
            frame.part.shares_buffer_with(&jpeg),
            "no copy of the frame bytes"
        );
    }

    #[test]
    fn a_handler_that_panics_while_watching_leaves_the_device_usable() {
        let device = device(Duration::from_secs(10));
        device
            .publish(bytes("one"), None, SINGLE, Instant::now())
            .unwrap();
        let watcher = {
            let device = Arc::clone(&device);
            thread::spawn(move || {
                let (mut viewer, _) = device.add_viewer(4, Peer::default()).unwrap();
                let _ = viewer.first();
                panic!("a bug in a handler, mid-stream");
            })
        };
        assert!(watcher.join().is_err());
        // The viewer was counted out as the thread unwound, and the lock is not poisoned
        // (parking_lot has no poisoning): the next push and the next viewer work.
        assert_eq!(device.status(Instant::now()).viewers, 0);
        device
            .publish(bytes("two"), None, SINGLE, Instant::now())
            .unwrap();
        let (mut viewer, count) = device.add_viewer(4, Peer::default()).unwrap();
        assert_eq!(count, 1);
        assert!(matches!(viewer.first(), Next::Fresh(_)));
    }

    #[test]
    fn a_waiting_viewer_is_woken_by_a_push() {
        let device = device(Duration::from_secs(10));
        let (mut viewer, _) = device.add_viewer(4, Peer::default()).unwrap();
        assert!(matches!(viewer.first(), Next::NoSignal));
        let pusher = {
            let device = Arc::clone(&device);
            thread::spawn(move || {
                device
                    .publish(bytes("two"), None, SINGLE, Instant::now())
                    .unwrap();
            })
        };
        let Next::Fresh(frame) = viewer.next(Duration::from_secs(30), None) else {
            panic!("expected the pushed frame");
        };
        assert_eq!(frame.part.jpeg(), b"two");
        pusher.join().unwrap();
    }

    #[test]
    fn a_slow_viewer_skips_to_the_newest_frame() {
        let device = device(Duration::from_secs(10));
        let (mut viewer, _) = device.add_viewer(4, Peer::default()).unwrap();
        for text in ["a", "b", "c"] {
            device
                .publish(bytes(text), None, SINGLE, Instant::now())
                .unwrap();
        }
        let Next::Fresh(frame) = viewer.next(Duration::from_millis(10), None) else {
            panic!("expected a frame");
        };
        assert_eq!((frame.part.jpeg(), frame.seq), (&b"c"[..], 3));
        assert!(matches!(
            viewer.next(Duration::from_millis(10), None),
            Next::Repeat(_)
        ));
    }

    #[test]
    fn an_offline_device_gives_no_signal_until_a_new_push() {
        let device = device(Duration::from_millis(100));
        let long_ago = Instant::now() - Duration::from_secs(1);
        device
            .publish(bytes("old"), None, SINGLE, long_ago)
            .unwrap();
        let (mut viewer, _) = device.add_viewer(4, Peer::default()).unwrap();
        assert!(matches!(viewer.first(), Next::NoSignal));
        // The stale frame must not flash up between two no-signal pictures.
        assert!(matches!(
            viewer.next(Duration::from_millis(1), None),
            Next::NoSignal
        ));
        device
            .publish(bytes("new"), None, SINGLE, Instant::now())
            .unwrap();
        let Next::Fresh(frame) = viewer.next(Duration::from_millis(1), None) else {
            panic!("expected the new frame");
        };
        assert_eq!(frame.part.jpeg(), b"new");
    }

    #[test]
    fn viewer_limit_and_counts() {
        let device = device(Duration::from_secs(10));
        let (mut first, _) = device.add_viewer(1, Peer::default()).unwrap();
        assert_eq!(
            device.add_viewer(1, Peer::default()).unwrap_err(),
            ViewersFull
        );
        first.sent();
        first.sent();
        drop(first);
        let status = device.status(Instant::now());
        assert_eq!((status.viewers, status.frames_sent), (0, 2));
        assert!(device.add_viewer(1, Peer::default()).is_ok());
    }

    #[test]
    fn sweep_reports_offline_once_and_evicts_only_unwatched_devices() {
        let device = device(Duration::from_millis(50));
        let start = Instant::now();
        device.publish(bytes("x"), None, SINGLE, start).unwrap();
        let later = start + Duration::from_secs(1);
        let watcher = device.add_viewer(4, Peer::default()).unwrap();
        let outcome = device.sweep(later, Duration::from_millis(500));
        assert_eq!(
            outcome,
            SweepOutcome {
                went_offline: true,
                evicted: false
            }
        );
        assert_eq!(
            device.sweep(later, Duration::from_millis(500)),
            SweepOutcome::default()
        );
        drop(watcher);
        assert!(device.sweep(later, Duration::from_millis(500)).evicted);
        assert_eq!(
            device.publish(bytes("y"), None, SINGLE, later),
            Err(Evicted)
        );
    }
}
