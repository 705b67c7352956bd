//! All devices by id: created by their first push (or first viewer), forgotten when idle.
//!
//! `--max-devices` counts devices that have frames. A viewer may also create a device that has
//! none yet (go2rtc started before the phone); those waiting devices have an allowance of their
//! own of the same size, so viewers asking for made-up ids can never take a phone's place.
//!
//! Every push is charged to the memory budget (`memory`) before its body is read, here, because
//! making room is a choice between devices: frames of offline devices go first (oldest first),
//! then devices nobody watches that pushed a single frame, and, for a push to a watched device,
//! any device nobody watches. An online device that someone watches never loses its frame to
//! make room. When even dropping every expendable frame would not make enough room, nothing is
//! dropped and the push gets 503.
//!
//! The registry lock is held only to find, insert or drop devices, never while a frame is
//! received or written, so it is not a bottleneck for pushes or viewers. Lock order is always
//! registry, then device, then the memory ledger.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::config::Config;
use crate::refusal::{Reason, Refusal};
use crate::relay::device::{
    Device, DeviceStatus, Frame, HangUp, Peer, PushMode, Viewer, ViewersFull,
};
use crate::relay::device_id::DeviceId;
use crate::relay::events::{Event, Kind, Listener};
use crate::relay::health::Health;
use crate::relay::jpeg::Dimensions;
use crate::relay::memory::{Charge, Full, MemoryBudget, Stage};
use crate::relay::mjpeg::Part;
use crate::relay::settings::Settings;
use crate::text::decimal::Seconds;

fn too_many_devices(limit: usize) -> Refusal {
    Refusal::new(
        Reason::DeviceLimit,
        format!("device limit reached ({limit} devices, see --max-devices); try again later"),
    )
}

fn too_many_waiting_devices(limit: usize) -> Refusal {
    Refusal::new(
        Reason::DeviceLimit,
        format!(
            "{limit} devices are already waiting for their first frame (see --max-devices); \
             try again later"
        ),
    )
}

fn too_many_viewers(limit: usize) -> Refusal {
    Refusal::new(
        Reason::ViewerLimit,
        format!(
            "viewer limit reached for this device ({limit} viewers, see --max-viewers); \
             try again later"
        ),
    )
}

fn out_of_memory(budget: &MemoryBudget, needed: usize, full: Full) -> Refusal {
    let usage = budget.snapshot().usage;
    let message = match full {
        Full::Budget => format!(
            "memory budget full ({} of {} bytes in use: {usage}; {needed} more needed, see \
             --memory-budget); try again later",
            usage.total(),
            budget.limit()
        ),
        Full::NewcomerShare => format!(
            "uploads for new devices already hold half the memory budget ({} of {} bytes, see \
             --memory-budget); try again later",
            usage.newcomer_uploads,
            budget.limit()
        ),
    };
    Refusal::new(Reason::MemoryBudget, message)
}

#[derive(Debug)]
pub struct Registry {
    devices: Mutex<HashMap<DeviceId, Arc<Device>>>,
    memory: Arc<MemoryBudget>,
    max_devices: usize,
    max_viewers: usize,
    offline_after: Duration,
    evict_after: Duration,
    battery_low: u8,
    listener: Option<Arc<dyn Listener>>,
}

impl Registry {
    pub fn new(config: &Config) -> Registry {
        Registry {
            devices: Mutex::new(HashMap::new()),
            memory: MemoryBudget::new(config.memory_budget),
            max_devices: config.max_devices.get(),
            max_viewers: config.max_viewers.get(),
            offline_after: config.offline_after,
            evict_after: config.evict_after,
            battery_low: config.battery_low,
            listener: None,
        }
    }

    /// The memory budget every frame and upload is charged to.
    pub fn memory(&self) -> &MemoryBudget {
        &self.memory
    }

    /// Charges `bytes` for a push to `id` (a body about to be received, or a frame about to be
    /// copied), dropping expendable frames if that makes room; see the module docs.
    pub fn reserve(&self, id: &DeviceId, bytes: usize) -> Result<Charge, Refusal> {
        let mut devices = self.devices.lock();
        let (newcomer, watched) = devices
            .get(id)
            .map_or((true, false), |d| (!d.has_frame(), d.is_watched()));
        let stage = if newcomer {
            Stage::NewcomerUpload
        } else {
            Stage::Upload
        };
        let full = match self.memory.charge(bytes, stage) {
            Ok(charge) => return Ok(charge),
            Err(full) => full,
        };
        if full == Full::Budget {
            if let Some(charge) = self.make_room(&mut devices, id, bytes, stage, watched) {
                return Ok(charge);
            }
        }
        drop(devices);
        let refusal = out_of_memory(&self.memory, bytes, full);
        if let Some(usage) = self.memory.refused() {
            log::warn!(
                "memory budget of {} bytes is full ({usage}): refusing pushes that do not fit \
                 until room is made",
                self.memory.limit()
            );
        }
        Err(refusal)
    }

    /// Drops expendable frames, least important and oldest first, until `bytes` fit; drops
    /// nothing if dropping all of them would not be enough.
    fn make_room(
        &self,
        devices: &mut HashMap<DeviceId, Arc<Device>>,
        requester: &DeviceId,
        bytes: usize,
        stage: Stage,
        for_watched: bool,
    ) -> Option<Charge> {
        let now = Instant::now();
        let freeable: usize = devices
            .iter()
            .filter(|(id, _)| *id != requester)
            .filter_map(|(_, device)| device.expendable(now, for_watched))
            .map(|(_, _, held)| held)
            .sum();
        let usage = self.memory.snapshot().usage;
        if usage.total().saturating_sub(freeable).saturating_add(bytes) > self.memory.limit() {
            return None;
        }
        // Least important and oldest first, looked for anew each round rather than sorted:
        // there are at most --max-devices of them, and a sort's code costs a router's flash.
        // Each round takes a frame away, so the rounds end.
        loop {
            let (_, victim) = devices
                .iter()
                .filter(|(id, _)| *id != requester)
                .filter_map(|(id, device)| {
                    let (rank, since, _) = device.expendable(now, for_watched)?;
                    Some(((rank, since), id))
                })
                .min_by_key(|(order, _)| *order)?;
            let victim = victim.clone();
            let device = devices.get(&victim)?;
            if device.drop_frame() {
                devices.remove(&victim);
                log::debug!("{victim}: forgotten to make room in the memory budget");
            } else {
                log::debug!("{victim}: offline frame dropped to make room in the memory budget");
            }
            self.memory.count_eviction();
            // A frame still being written to someone frees its bytes only when they are done,
            // so the next victim may be needed even though the sum said this one would do.
            if let Ok(charge) = self.memory.charge(bytes, stage) {
                return Some(charge);
            }
        }
    }

    /// Tells `listener` of every device event from now on.
    pub fn with_listener(mut self, listener: Arc<dyn Listener>) -> Registry {
        self.listener = Some(listener);
        self
    }

    fn announce(&self, device: &Device, kind: Kind) {
        let Some(listener) = &self.listener else {
            return;
        };
        let health = device.status(Instant::now()).health;
        let battery = health.as_ref().and_then(|(h, _)| h.battery);
        let charging = health.as_ref().and_then(|(h, _)| h.charging);
        listener.hear(Event {
            kind,
            device: device.id().clone(),
            battery,
            charging,
        });
    }

    /// Keeps a phone's health report and the settings it runs with; logs and announces the
    /// alerts it raises (battery low, stopped charging).
    pub fn report(&self, device: &Device, health: Option<Health>, effective: Option<Settings>) {
        let alerts = device.report(health, effective, self.battery_low, Instant::now());
        for kind in alerts {
            let status = device.status(Instant::now());
            let battery = status.health.as_ref().and_then(|(h, _)| h.battery);
            let id = device.id();
            match (kind, battery) {
                (Kind::BatteryLow, Some(battery)) => log::info!(
                    "{id}: battery low ({battery} %, below --battery-low {} %)",
                    self.battery_low
                ),
                _ => log::info!("{id}: {}", kind.as_str().replace('_', " ")),
            }
            self.announce(device, kind);
        }
    }

    /// The device, if the relay keeps it.
    pub fn device(&self, id: &DeviceId) -> Option<Arc<Device>> {
        self.devices.lock().get(id).cloned()
    }

    /// Publishes a frame, creating the device on its first push; returns the device too.
    pub fn publish(
        &self,
        id: &DeviceId,
        part: Part,
        dimensions: Option<Dimensions>,
        from: (Option<SocketAddr>, PushMode),
    ) -> Result<(u64, Arc<Device>), Refusal> {
        loop {
            let device = self.find_for_push(id)?;
            // Retried only if the sweep forgot the device between the lookup and the publish.
            if let Ok(published) = device.publish(part.clone(), dimensions, from, Instant::now()) {
                if published.came_online {
                    let pusher = from.0;
                    let from = pusher.map_or_else(String::new, |addr| format!(" from {addr}"));
                    log::info!("{id}: online{from}");
                    self.announce(&device, Kind::Online);
                }
                return Ok((published.seq, device));
            }
        }
    }

    /// Registers a viewer, creating the device if no phone has pushed to it yet, so that a
    /// go2rtc started before the phone gets a stream instead of a 404 and a minute of back-off.
    pub fn watch(&self, id: &DeviceId, peer: Peer) -> Result<Viewer, Refusal> {
        let mut devices = self.devices.lock();
        let device = match devices.get(id) {
            Some(device) => Arc::clone(device),
            None => {
                let waiting = devices.values().filter(|d| !d.has_frame()).count();
                if waiting >= self.max_devices {
                    return Err(too_many_waiting_devices(self.max_devices));
                }
                self.insert(&mut devices, id)
            }
        };
        let addr = peer.addr;
        let (viewer, viewers) = device
            .add_viewer(self.max_viewers, peer)
            .map_err(|ViewersFull| too_many_viewers(self.max_viewers))?;
        drop(devices);
        let who = addr.map_or_else(|| "a viewer".to_string(), |addr| addr.to_string());
        log::info!("{id}: {who} watching ({viewers} viewers)");
        Ok(viewer)
    }

    /// Counts a refused push against its device, if the device exists: a bad push never
    /// creates one (that would let garbage use up `--max-devices`).
    pub fn count_bad_frame(&self, id: &DeviceId) {
        let device = self.devices.lock().get(id).cloned();
        if let Some(device) = device {
            device.count_bad_frame();
        }
    }

    /// The latest frame of a device, if it has one.
    pub fn latest(&self, id: &DeviceId) -> Option<Frame> {
        let device = self.devices.lock().get(id).cloned()?;
        device.latest()
    }

    /// Status of every device, sorted by id.
    pub fn statuses(&self) -> Vec<DeviceStatus> {
        let mut devices: Vec<Arc<Device>> = self.devices.lock().values().cloned().collect();
        // Sorting the pointers rather than the statuses: the same order, and the sort's code
        // is instantiated for a type a tenth the size.
        devices.sort_unstable_by(|a, b| a.id().cmp(b.id()));
        let now = Instant::now();
        devices.iter().map(|d| d.status(now)).collect()
    }

    /// Housekeeping: logs devices going offline, forgets idle ones, and says when the memory
    /// budget has stopped refusing pushes.
    pub fn sweep(&self) {
        let now = Instant::now();
        if let Some(recovered) = self.memory.check_recovered(now) {
            log::info!(
                "memory budget: pushes fit again ({} refused over {}; in use now: {})",
                recovered.refused,
                Seconds(recovered.lasted),
                self.memory.snapshot().usage
            );
        }
        let mut devices = self.devices.lock();
        devices.retain(|id, device| {
            let outcome = device.sweep(now, self.evict_after);
            if outcome.went_offline {
                log::info!(
                    "{id}: offline (no frame for {})",
                    Seconds(self.offline_after)
                );
                self.announce(device, Kind::Offline);
            }
            if outcome.evicted {
                log::debug!("{id}: forgotten");
            }
            !outcome.evicted
        });
    }

    /// Forgets a device at once (`DELETE /api/devices/{id}`), returning the connections of its
    /// viewers and streaming pusher to close; `None` if there is no such device.
    pub fn forget(&self, id: &DeviceId) -> Option<Vec<Arc<dyn HangUp>>> {
        let device = self.devices.lock().remove(id)?;
        log::info!("{id}: forgotten on request");
        Some(device.forget())
    }

    pub fn len(&self) -> usize {
        self.devices.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The device a push goes to, created if needed, as long as devices with frames stay
    /// within `--max-devices` (a waiting device gets its place with its first frame).
    fn find_for_push(&self, id: &DeviceId) -> Result<Arc<Device>, Refusal> {
        let mut devices = self.devices.lock();
        let existing = devices.get(id).cloned();
        if let Some(device) = &existing {
            if device.has_frame() {
                return Ok(Arc::clone(device));
            }
        }
        let with_frames = devices.values().filter(|d| d.has_frame()).count();
        if with_frames >= self.max_devices {
            return Err(too_many_devices(self.max_devices));
        }
        Ok(existing.unwrap_or_else(|| self.insert(&mut devices, id)))
    }

    fn insert(&self, devices: &mut HashMap<DeviceId, Arc<Device>>, id: &DeviceId) -> Arc<Device> {
        let device = Arc::new(Device::new(id.clone(), self.offline_after));
        devices.insert(id.clone(), Arc::clone(&device));
        device
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(registry: &Registry, name: &str) -> Result<u64, Refusal> {
        registry
            .publish(&id(name), jpeg(), None, (None, PushMode::Single))
            .map(|(seq, _)| seq)
    }
    use std::num::NonZeroUsize;

    fn registry(max_devices: usize, max_viewers: usize) -> Registry {
        Registry::new(&Config {
            max_devices: NonZeroUsize::new(max_devices).unwrap(),
            max_viewers: NonZeroUsize::new(max_viewers).unwrap(),
            offline_after: Duration::from_millis(20),
            evict_after: Duration::from_millis(40),
            ..Config::default()
        })
    }

    fn id(text: &str) -> DeviceId {
        DeviceId::parse(text).unwrap()
    }

    fn jpeg() -> Part {
        Part::from_jpeg(&[0xFF, 0xD8, 0xFF, 0xD9], None)
    }

    #[test]
    fn devices_are_created_by_push_and_capped() {
        let registry = registry(2, 4);
        assert_eq!(push(&registry, "a"), Ok(1));
        assert_eq!(push(&registry, "a"), Ok(2));
        assert_eq!(push(&registry, "b"), Ok(1));
        assert_eq!(push(&registry, "c"), Err(too_many_devices(2)));
        assert_eq!(registry.len(), 2);
        assert!(registry.latest(&id("a")).is_some());
        assert!(registry.latest(&id("c")).is_none());
    }

    #[test]
    fn viewers_waiting_for_made_up_ids_never_take_a_phones_place() {
        let registry = registry(2, 4);
        let _a = registry.watch(&id("made_up_1"), Peer::default()).unwrap();
        let _b = registry.watch(&id("made_up_2"), Peer::default()).unwrap();
        assert_eq!(
            registry
                .watch(&id("made_up_3"), Peer::default())
                .unwrap_err(),
            too_many_waiting_devices(2)
        );
        // Phones still get both places, one of them a device a viewer is waiting for.
        assert_eq!(push(&registry, "phone"), Ok(1));
        assert_eq!(push(&registry, "made_up_1"), Ok(1));
        assert_eq!(push(&registry, "phone_3"), Err(too_many_devices(2)));
        assert_eq!(push(&registry, "made_up_2"), Err(too_many_devices(2)));
    }

    #[test]
    fn viewers_are_capped_per_device() {
        let registry = registry(4, 1);
        let _first = registry.watch(&id("a"), Peer::default()).unwrap();
        assert_eq!(
            registry.watch(&id("a"), Peer::default()).unwrap_err(),
            too_many_viewers(1)
        );
        assert!(registry.watch(&id("b"), Peer::default()).is_ok());
    }

    #[test]
    fn idle_devices_are_forgotten_and_watched_ones_kept() {
        let registry = registry(4, 4);
        push(&registry, "idle").unwrap();
        push(&registry, "watched").unwrap();
        let viewer = registry.watch(&id("watched"), Peer::default()).unwrap();
        let waiting = registry.watch(&id("waiting"), Peer::default()).unwrap();
        std::thread::sleep(Duration::from_millis(60));
        registry.sweep();
        let ids: Vec<String> = registry
            .statuses()
            .iter()
            .map(|s| s.id.to_string())
            .collect();
        assert_eq!(ids, ["waiting", "watched"]);
        drop(viewer);
        drop(waiting);
        registry.sweep();
        assert!(registry.is_empty());
        // A push after eviction simply creates the device again.
        assert_eq!(push(&registry, "idle"), Ok(1));
    }

    const JPEG_BYTES: usize = 1000;

    /// A registry whose budget holds `frames` frames of `JPEG_BYTES`, offline after 300 ms.
    fn budgeted(frames: usize) -> Registry {
        Registry::new(&Config {
            memory_budget: frames * Part::size_for(JPEG_BYTES),
            offline_after: Duration::from_millis(300),
            evict_after: Duration::from_secs(3600),
            ..Config::default()
        })
    }

    fn push_charged(registry: &Registry, name: &str) -> Result<u64, Refusal> {
        let charge = registry.reserve(&id(name), Part::size_for(JPEG_BYTES))?;
        let part = Part::from_jpeg(&[7; JPEG_BYTES], Some(charge));
        registry
            .publish(&id(name), part, None, (None, PushMode::Single))
            .map(|(seq, _)| seq)
    }

    /// Devices holding a frame, by id.
    fn kept(registry: &Registry) -> Vec<String> {
        registry
            .statuses()
            .iter()
            .filter(|s| s.last_frame_bytes.is_some())
            .map(|s| s.id.to_string())
            .collect()
    }

    #[test]
    fn room_is_made_from_offline_frames_then_single_pushes_and_never_from_watched_devices() {
        let registry = budgeted(5);
        push_charged(&registry, "gone").unwrap();
        let gone_viewer = registry.watch(&id("gone"), Peer::default()).unwrap();
        std::thread::sleep(Duration::from_millis(350));
        // Watched and pushing; unwatched and pushing; a single push; a newcomer.
        push_charged(&registry, "phone").unwrap();
        push_charged(&registry, "phone").unwrap();
        let _phone_viewer = registry.watch(&id("phone"), Peer::default()).unwrap();
        push_charged(&registry, "busy").unwrap();
        push_charged(&registry, "busy").unwrap();
        push_charged(&registry, "once").unwrap();
        push_charged(&registry, "new_1").unwrap();
        assert_eq!(kept(&registry), ["busy", "gone", "new_1", "once", "phone"]);
        // Full: the offline frame goes first; its device stays for its viewer.
        push_charged(&registry, "new_2").unwrap();
        assert_eq!(kept(&registry), ["busy", "new_1", "new_2", "once", "phone"]);
        assert!(registry.statuses().iter().any(|s| s.id.as_str() == "gone"));
        drop(gone_viewer);
        // Then single pushes nobody watches, oldest first, device and all.
        push_charged(&registry, "new_3").unwrap();
        assert_eq!(
            kept(&registry),
            ["busy", "new_1", "new_2", "new_3", "phone"]
        );
        assert!(registry.statuses().iter().all(|s| s.id.as_str() != "once"));
        push_charged(&registry, "new_4").unwrap();
        push_charged(&registry, "new_5").unwrap();
        assert_eq!(
            kept(&registry),
            ["busy", "new_3", "new_4", "new_5", "phone"]
        );
        // With the rest watched, a newcomer finds no room: a device that keeps pushing is not
        // pushed out by one, and nothing is dropped for a push that fails anyway.
        let _watchers: Vec<Viewer> = ["new_3", "new_4", "new_5"]
            .iter()
            .map(|name| registry.watch(&id(name), Peer::default()).unwrap())
            .collect();
        let refused = push_charged(&registry, "new_6").unwrap_err();
        assert_eq!(refused.reason, Reason::MemoryBudget);
        assert_eq!(
            kept(&registry),
            ["busy", "new_3", "new_4", "new_5", "phone"]
        );
        // A watched device's next frame may push out a device nobody watches.
        push_charged(&registry, "phone").unwrap();
        assert_eq!(kept(&registry), ["new_3", "new_4", "new_5", "phone"]);
        let snapshot = registry.memory().snapshot();
        assert_eq!(snapshot.usage.frames, 4 * Part::size_for(JPEG_BYTES));
        assert_eq!((snapshot.refusals, snapshot.evictions), (1, 5));
    }
}
