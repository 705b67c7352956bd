//! A cap on the request handlers running at once (`--max-connections`).
//!
//! Each request runs on its own thread, and a viewer's thread lives as long as its stream, so
//! this cap bounds threads and memory whatever clients do. Past the cap a request still needs a
//! thread to be told "503": answering it on the dispatch thread could block that thread behind
//! a stream pipelined on the same connection (tiny_http serialises responses per connection).
//! A small reserve of extra slots is kept for those short refusals; when even the reserve is
//! used up, the dispatch loop waits for a slot, which pushes back on new requests instead of
//! growing without bound.

use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::dispatch_stalls::DispatchStalls;

#[derive(Debug)]
pub struct HandlerSlots {
    in_use: Mutex<InUse>,
    freed: Condvar,
    limit: usize,
    reserve: usize,
}

#[derive(Debug, Default)]
struct InUse {
    serving: usize,
    refusing: usize,
}

/// What a request may do with the slot it got.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Admission {
    /// Serve the request.
    Serve,
    /// Over `--max-connections`: answer 503 and finish.
    Refuse,
}

/// A taken slot, returned when dropped (also when a handler panics).
#[derive(Debug)]
pub struct Slot {
    slots: Arc<HandlerSlots>,
    pub admission: Admission,
}

impl HandlerSlots {
    pub fn new(limit: usize) -> HandlerSlots {
        HandlerSlots {
            in_use: Mutex::new(InUse::default()),
            freed: Condvar::new(),
            limit,
            reserve: reserve_for(limit),
        }
    }

    /// Takes a slot: a serving one while fewer than `limit` handlers serve, else a refusing
    /// one from the reserve, else waits for either (recorded in `stalls`).
    pub fn acquire(self: &Arc<Self>, stalls: &DispatchStalls) -> Slot {
        if let Some(slot) = self.try_acquire() {
            return slot;
        }
        stalls.during(|| {
            let mut in_use = self.in_use.lock();
            loop {
                if let Some(admission) = self.admit(&mut in_use) {
                    break self.slot(admission);
                }
                self.freed.wait(&mut in_use);
            }
        })
    }

    /// Takes a slot if one is free now.
    pub fn try_acquire(self: &Arc<Self>) -> Option<Slot> {
        let admission = self.admit(&mut self.in_use.lock())?;
        Some(self.slot(admission))
    }

    fn admit(&self, in_use: &mut InUse) -> Option<Admission> {
        if in_use.serving < self.limit {
            in_use.serving += 1;
            return Some(Admission::Serve);
        }
        if in_use.refusing < self.reserve {
            in_use.refusing += 1;
            return Some(Admission::Refuse);
        }
        None
    }

    fn slot(self: &Arc<Self>, admission: Admission) -> Slot {
        Slot {
            slots: Arc::clone(self),
            admission,
        }
    }

    /// Handlers serving requests now.
    pub fn serving(&self) -> usize {
        self.in_use.lock().serving
    }

    pub fn limit(&self) -> usize {
        self.limit
    }
}

/// Refusals are quick, so a modest reserve is enough to keep answering under a flood.
fn reserve_for(limit: usize) -> usize {
    (limit / 8).clamp(4, 64)
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut in_use = self.slots.in_use.lock();
        match self.admission {
            Admission::Serve => in_use.serving -= 1,
            Admission::Refuse => in_use.refusing -= 1,
        }
        drop(in_use);
        self.slots.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;
    use std::time::Duration;

    #[test]
    fn serves_up_to_the_limit_then_refuses_from_the_reserve() {
        let slots = Arc::new(HandlerSlots::new(2));
        let first = slots.acquire(&DispatchStalls::default());
        let second = slots.acquire(&DispatchStalls::default());
        let third = slots.acquire(&DispatchStalls::default());
        assert_eq!(
            [first.admission, second.admission, third.admission],
            [Admission::Serve, Admission::Serve, Admission::Refuse]
        );
        drop(first);
        assert_eq!(
            slots.acquire(&DispatchStalls::default()).admission,
            Admission::Serve
        );
        drop((second, third));
        assert_eq!(slots.serving(), 0);
    }

    #[test]
    fn waits_when_the_reserve_is_used_up_and_records_the_stall() {
        let slots = Arc::new(HandlerSlots::new(1));
        let stalls = Arc::new(DispatchStalls::default());
        let taken: Vec<Slot> = (0..1 + reserve_for(1))
            .map(|_| slots.acquire(&stalls))
            .collect();
        assert!(!stalls.within(Duration::from_secs(60)), "no wait yet");
        let waiter = {
            let slots = Arc::clone(&slots);
            let stalls = Arc::clone(&stalls);
            thread::spawn(move || slots.acquire(&stalls).admission)
        };
        thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "must wait for a free slot");
        assert!(stalls.within(Duration::ZERO), "the wait is a stall");
        drop(taken);
        assert_eq!(waiter.join().unwrap(), Admission::Serve);
        assert!(stalls.within(Duration::from_secs(60)));
    }
}
