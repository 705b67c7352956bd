//! A timed log of what happens to the normal load's pushers (loadgen's, through their
//! observer): *when* and *why* a kept-alive connection ended, and when a push failed.
//!
//! The relay must keep a phone's connection for as long as the phone keeps pushing (a push
//! every 67 ms is never idle), so outside an attack every lost connection, and the reconnect
//! it forces, is the relay's doing. A connection counts as lost when a push on it fails
//! (error, reset, timeout, end of stream) or when the relay answers with `Connection: close`.
//! Events are kept with their time so that a trial can count them per phase.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::pusher::{PushEvent, PushObserver};
use crate::stats::Tally;

/// Lost connections and failed pushes of every pusher, with their times.
#[derive(Debug, Default)]
pub struct PushLog {
    events: Mutex<Vec<Event>>,
}

#[derive(Debug, Clone)]
struct Event {
    at: Instant,
    kind: EventKind,
}

#[derive(Debug, Clone)]
enum EventKind {
    /// A kept-alive connection ended (the next push reconnects), and why.
    Lost(String),
    /// A push that was not answered 200 (connect failures included), by kind.
    Failed(String),
}

impl PushLog {
    /// An observer for loadgen's pushers that records into this log.
    pub fn observer(self: &Arc<Self>) -> PushObserver {
        let log = Arc::clone(self);
        Arc::new(move |event| match event {
            PushEvent::ConnectionLost(why) => log.record(EventKind::Lost(why.to_string())),
            PushEvent::Failed(kind) => log.record(EventKind::Failed(kind.to_string())),
        })
    }

    fn record(&self, kind: EventKind) {
        let event = Event {
            at: Instant::now(),
            kind,
        };
        self.events
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(event);
    }

    fn tally(&self, from: Instant, to: Instant, lost: bool) -> Tally {
        let events = self
            .events
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut tally = Tally::default();
        for event in events.iter().filter(|e| from <= e.at && e.at < to) {
            match (&event.kind, lost) {
                (EventKind::Lost(why), true) | (EventKind::Failed(why), false) => tally.add(why),
                _ => {}
            }
        }
        tally
    }

    /// Kept-alive connections lost in `[from, to)`, by reason: the reconnects of that span.
    pub fn reconnects(&self, from: Instant, to: Instant) -> Tally {
        self.tally(from, to, true)
    }

    /// Pushes that failed in `[from, to)`, by kind.
    pub fn failures(&self, from: Instant, to: Instant) -> Tally {
        self.tally(from, to, false)
    }
}
