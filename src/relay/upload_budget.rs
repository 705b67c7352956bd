//! A cap on the bytes of push bodies being received at once (`--max-upload-bytes`).
//!
//! A push reserves its declared size before its buffer is allocated (a body sent chunked, with
//! no declared size, reserves the frame cap). Without this, a few hundred connections that send
//! only headers declaring 4 MiB each would make the relay commit gigabytes before a single body
//! byte arrived; with it, receiving frames never takes more than the budget, whatever clients
//! do, and a push that does not fit is told to retry (503) instead.

use parking_lot::Mutex;

#[derive(Debug)]
pub struct UploadBudget {
    in_use: Mutex<usize>,
    limit: usize,
}

/// Bytes held for one push until it is published or refused.
#[derive(Debug)]
pub struct Reservation<'a> {
    budget: &'a UploadBudget,
    bytes: usize,
}

impl UploadBudget {
    pub fn new(limit: usize) -> UploadBudget {
        UploadBudget {
            in_use: Mutex::new(0),
            limit,
        }
    }

    /// Reserves `bytes`, or `None` when that would go over the limit.
    pub fn reserve(&self, bytes: usize) -> Option<Reservation<'_>> {
        let mut in_use = self.in_use.lock();
        let after = in_use
            .checked_add(bytes)
            .filter(|after| *after <= self.limit)?;
        *in_use = after;
        Some(Reservation {
            budget: self,
            bytes,
        })
    }

    /// An empty reservation, for a push refused before it reads anything.
    pub fn nothing(&self) -> Reservation<'_> {
        Reservation {
            budget: self,
            bytes: 0,
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        *self.budget.in_use.lock() -= self.bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_stay_within_the_limit_and_come_back() {
        let budget = UploadBudget::new(100);
        let first = budget.reserve(60).unwrap();
        assert!(budget.reserve(41).is_none());
        let second = budget.reserve(40).unwrap();
        assert!(budget.reserve(1).is_none());
        drop(first);
        assert!(budget.reserve(60).is_some());
        drop(second);
        assert!(budget.reserve(usize::MAX).is_none());
        assert!(budget.reserve(100).is_some());
    }
}
