//! Waiting until every device has had a push accepted, before any viewer starts.
//!
//! The reference server answers 404 to a viewer of a device it has no frame for, so viewers
//! started too early would measure errors. While a device is still waiting, the reason its
//! last push failed is kept, so a run that cannot start says why for each device.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Readiness {
    devices: Mutex<Vec<State>>,
    changed: Condvar,
}

#[derive(Debug, Clone)]
enum State {
    Waiting(Option<String>),
    Ready,
}

impl Readiness {
    pub fn new(devices: u32) -> Readiness {
        Readiness {
            devices: Mutex::new(vec![State::Waiting(None); devices as usize]),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<State>> {
        // A panicking pusher cannot leave this list inconsistent: every write is one store.
        self.devices
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Device `index` had a push accepted.
    pub fn ready(&self, index: u32) {
        let mut devices = self.lock();
        if let Some(state @ State::Waiting(_)) = devices.get_mut(index as usize) {
            *state = State::Ready;
            drop(devices);
            self.changed.notify_all();
        }
    }

    /// Device `index` failed a push; remembered only until it succeeds.
    pub fn failed(&self, index: u32, reason: String) {
        if let Some(State::Waiting(last)) = self.lock().get_mut(index as usize) {
            *last = Some(reason);
        }
    }

    /// Waits until every device is ready, or returns the devices still waiting with the
    /// last reason each one failed.
    pub fn wait_all(&self, timeout: Duration) -> Result<(), Vec<(u32, Option<String>)>> {
        let deadline = Instant::now() + timeout;
        let mut devices = self.lock();
        loop {
            let waiting: Vec<(u32, Option<String>)> = devices
                .iter()
                .enumerate()
                .filter_map(|(index, state)| match state {
                    State::Waiting(reason) => Some((index as u32, reason.clone())),
                    State::Ready => None,
                })
                .collect();
            let now = Instant::now();
            if waiting.is_empty() {
                return Ok(());
            }
            if now >= deadline {
                return Err(waiting);
            }
            devices = match self.changed.wait_timeout(devices, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;

    #[test]
    fn waits_for_every_device_and_reports_the_stragglers() {
        let readiness = Arc::new(Readiness::new(2));
        readiness.failed(1, "HTTP 503 busy".into());
        readiness.ready(0);
        let waiting = readiness.wait_all(Duration::from_millis(20)).unwrap_err();
        assert_eq!(waiting, vec![(1, Some("HTTP 503 busy".to_string()))]);

        let late = {
            let readiness = Arc::clone(&readiness);
            thread::spawn(move || readiness.ready(1))
        };
        assert_eq!(readiness.wait_all(Duration::from_secs(10)), Ok(()));
        late.join().unwrap();
    }
}
