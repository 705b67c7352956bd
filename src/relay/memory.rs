//! One memory budget (`--memory-budget`) for everything a client can make the relay hold.
//!
//! Three things grow with what clients send: the latest frame of every device, the bodies
//! being received, and older frames that viewers are still writing after a newer one replaced
//! them. Each had a sensible limit of its own, but the limits multiplied (64 devices × 4 MiB
//! frames + 16 MiB of uploads + a frame per viewer), and on a 64 MB router that product is the
//! kernel's OOM killer. So all three are charged to one ledger with one limit.
//!
//! A [`Charge`] is the bytes of one buffer, held from before the buffer is allocated until it
//! is freed. It moves through stages instead of being released and taken again, so a frame
//! never needs room twice: an upload's charge becomes the frame's charge when the frame is
//! published ([`Charge::publish`]), and the frame's becomes in-flight when a newer frame
//! replaces it ([`Charge::retire`]). The charge sits inside the frame's shared buffer (see
//! `mjpeg::Part`), so its `Drop` runs when the last viewer lets go of the frame: in-flight
//! bytes are counted exactly, with no per-viewer copy and no polling.
//!
//! Bodies for devices the relay does not keep yet (newcomers) may hold at most half the budget
//! together: a flood of pushes to new ids can never take the room that the phones already
//! streaming need for their next frame. Making room by dropping frames is the registry's
//! decision (it knows which devices matter); this ledger only counts.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// After this long without a refusal, the budget is reported as accepting pushes again.
pub const QUIET_AFTER: Duration = Duration::from_secs(5);

/// Bytes in use, by what holds them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// The latest frame of every device.
    pub frames: usize,
    /// Bodies being received (declared lengths, or the frame cap for a body of unknown length).
    pub uploads: usize,
    /// The part of `uploads` that is for devices the relay did not keep yet.
    pub newcomer_uploads: usize,
    /// Replaced frames that viewers (or a snapshot) are still writing.
    pub in_flight: usize,
}

impl Usage {
    pub fn total(&self) -> usize {
        self.frames + self.uploads + self.in_flight
    }
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes of frames, {} of uploads, {} in flight",
            self.frames, self.uploads, self.in_flight
        )
    }
}

/// Why a charge could not be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// The whole budget is in use: room may be made by dropping frames.
    Budget,
    /// Bodies for new devices already hold half the budget: only time makes room.
    NewcomerShare,
}

/// What a charge pays for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// A body being received for a device that has a frame.
    Upload,
    /// A body being received for a device the relay does not keep yet.
    NewcomerUpload,
    /// A device's latest frame.
    Frame,
    /// A replaced frame still being written to someone.
    InFlight,
}

impl Stage {
    fn from_u8(value: u8) -> Stage {
        match value {
            0 => Stage::Upload,
            1 => Stage::NewcomerUpload,
            2 => Stage::Frame,
            _ => Stage::InFlight,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            Stage::Upload => 0,
            Stage::NewcomerUpload => 1,
            Stage::Frame => 2,
            Stage::InFlight => 3,
        }
    }
}

/// The ledger and its limit.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    ledger: Mutex<Ledger>,
}

#[derive(Debug, Default)]
struct Ledger {
    usage: Usage,
    refusals: u64,
    evictions: u64,
    /// Set while pushes are being refused: when the spell began, the last refusal, and how
    /// many so far (for the one log line when it ends).
    refusing: Option<Spell>,
}

#[derive(Debug, Clone, Copy)]
struct Spell {
    since: Instant,
    last: Instant,
    count: u64,
}

/// A refusal spell that ended, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    pub refused: u64,
    pub lasted: Duration,
}

/// Figures for `/metrics` and `/api/devices`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub limit: usize,
    pub usage: Usage,
    pub refusals: u64,
    pub evictions: u64,
}

impl MemoryBudget {
    pub fn new(limit: usize) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            limit,
            ledger: Mutex::new(Ledger::default()),
        })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Charges `bytes` at `stage` (an upload stage), or says why it does not fit.
    pub fn charge(self: &Arc<Self>, bytes: usize, stage: Stage) -> Result<Charge, Full> {
        let mut ledger = self.ledger.lock();
        let usage = &mut ledger.usage;
        let after = usage.total().checked_add(bytes).ok_or(Full::Budget)?;
        if stage == Stage::NewcomerUpload && usage.newcomer_uploads + bytes > self.limit / 2 {
            return Err(Full::NewcomerShare);
        }
        if after > self.limit {
            return Err(Full::Budget);
        }
        add(usage, stage, bytes);
        Ok(Charge {
            budget: Arc::clone(self),
            bytes,
            stage: AtomicU8::new(stage.as_u8()),
        })
    }

    /// Counts a push refused for want of room; `Some(usage)` if this starts a spell of
    /// refusals, so that the caller logs it once.
    pub fn refused(&self) -> Option<Usage> {
        let now = Instant::now();
        let mut ledger = self.ledger.lock();
        ledger.refusals += 1;
        match &mut ledger.refusing {
            Some(spell) => {
                spell.last = now;
                spell.count += 1;
                None
            }
            None => {
                ledger.refusing = Some(Spell {
                    since: now,
                    last: now,
                    count: 1,
                });
                Some(ledger.usage)
            }
        }
    }

    /// Ends a spell of refusals once none came for [`QUIET_AFTER`]; called by housekeeping.
    pub fn check_recovered(&self, now: Instant) -> Option<Recovered> {
        let mut ledger = self.ledger.lock();
        let spell = ledger.refusing?;
        if now.saturating_duration_since(spell.last) < QUIET_AFTER {
            return None;
        }
        ledger.refusing = None;
        Some(Recovered {
            refused: spell.count,
            lasted: spell.last.saturating_duration_since(spell.since),
        })
    }

    pub fn count_eviction(&self) {
        self.ledger.lock().evictions += 1;
    }

    pub fn snapshot(&self) -> Snapshot {
        let ledger = self.ledger.lock();
        Snapshot {
            limit: self.limit,
            usage: ledger.usage,
            refusals: ledger.refusals,
            evictions: ledger.evictions,
        }
    }

    fn restage(&self, charge: &Charge, from: Stage, to: Stage) {
        let mut ledger = self.ledger.lock();
        // Read and changed under the ledger lock, so two moves of one charge cannot interleave.
        if Stage::from_u8(charge.stage.load(Ordering::Relaxed)) != from {
            return;
        }
        subtract(&mut ledger.usage, from, charge.bytes);
        add(&mut ledger.usage, to, charge.bytes);
        charge.stage.store(to.as_u8(), Ordering::Relaxed);
    }
}

fn add(usage: &mut Usage, stage: Stage, bytes: usize) {
    match stage {
        Stage::Upload => usage.uploads += bytes,
        Stage::NewcomerUpload => {
            usage.uploads += bytes;
            usage.newcomer_uploads += bytes;
        }
        Stage::Frame => usage.frames += bytes,
        Stage::InFlight => usage.in_flight += bytes,
    }
}

fn subtract(usage: &mut Usage, stage: Stage, bytes: usize) {
    match stage {
        Stage::Upload => usage.uploads -= bytes,
        Stage::NewcomerUpload => {
            usage.uploads -= bytes;
            usage.newcomer_uploads -= bytes;
        }
        Stage::Frame => usage.frames -= bytes,
        Stage::InFlight => usage.in_flight -= bytes,
    }
}

/// Bytes held against the budget until dropped; see the module docs.
#[derive(Debug)]
pub struct Charge {
    budget: Arc<MemoryBudget>,
    bytes: usize,
    /// A `Stage`, changed only under the ledger lock (an atomic so that a charge shared
    /// between threads inside a frame stays `Sync`; 8 bits, fine on 32-bit MIPS).
    stage: AtomicU8,
}

impl Charge {
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn stage(&self) -> Stage {
        Stage::from_u8(self.stage.load(Ordering::Relaxed))
    }

    /// The body it paid for became a device's latest frame.
    pub fn publish(&self) {
        let from = self.stage();
        if matches!(from, Stage::Upload | Stage::NewcomerUpload) {
            self.budget.restage(self, from, Stage::Frame);
        }
    }

    /// The frame it pays for was replaced; whoever still writes it keeps it until done.
    pub fn retire(&self) {
        self.budget.restage(self, Stage::Frame, Stage::InFlight);
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        let mut ledger = self.budget.ledger.lock();
        subtract(&mut ledger.usage, self.stage(), self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_stay_within_the_limit_and_come_back() {
        let budget = MemoryBudget::new(100);
        let first = budget.charge(60, Stage::Upload).unwrap();
        assert_eq!(budget.charge(41, Stage::Upload).unwrap_err(), Full::Budget);
        let second = budget.charge(40, Stage::Upload).unwrap();
        drop(first);
        assert!(budget.charge(60, Stage::Upload).is_ok());
        drop(second);
        assert_eq!(budget.snapshot().usage, Usage::default());
        assert_eq!(
            budget.charge(usize::MAX, Stage::Upload).unwrap_err(),
            Full::Budget
        );
    }

    #[test]
    fn a_charge_moves_from_upload_to_frame_to_in_flight_without_needing_room_again() {
        let budget = MemoryBudget::new(100);
        let charge = budget.charge(70, Stage::NewcomerUpload);
        // A newcomer's body may not take more than half.
        assert_eq!(charge.unwrap_err(), Full::NewcomerShare);
        let charge = budget.charge(50, Stage::NewcomerUpload).unwrap();
        assert_eq!(
            budget.charge(1, Stage::NewcomerUpload).unwrap_err(),
            Full::NewcomerShare
        );
        charge.publish();
        let usage = budget.snapshot().usage;
        assert_eq!(
            (usage.frames, usage.uploads, usage.newcomer_uploads),
            (50, 0, 0)
        );
        charge.retire();
        charge.retire();
        let usage = budget.snapshot().usage;
        assert_eq!((usage.frames, usage.in_flight, usage.total()), (0, 50, 50));
        let shared = Arc::new(charge);
        let viewer = Arc::clone(&shared);
        drop(shared);
        assert_eq!(budget.snapshot().usage.in_flight, 50);
        drop(viewer);
        assert_eq!(budget.snapshot().usage, Usage::default());
    }

    #[test]
    fn a_spell_of_refusals_is_reported_once_each_way() {
        let budget = MemoryBudget::new(100);
        assert!(budget.refused().is_some());
        assert!(budget.refused().is_none());
        let now = Instant::now();
        assert_eq!(budget.check_recovered(now), None);
        let later = now + QUIET_AFTER + Duration::from_secs(1);
        assert_eq!(budget.check_recovered(later).map(|r| r.refused), Some(2));
        assert_eq!(budget.check_recovered(later), None);
        assert_eq!(budget.snapshot().refusals, 2);
    }
}
