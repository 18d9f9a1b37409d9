//! Compute-unit budgets: a limit per call, a limit in all, or both, checked before anything is
//! sent. What a call may cost is *reserved* when it is checked, so calls that run at once
//! cannot all pass a check that only one of them fits (a check and a charge separated by an
//! awaited request would let six calls through a budget for one). A reservation becomes what
//! its jobs count for once they exist, and is released if nothing was created.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use uuid::Uuid;

use crate::cost::Estimate;

/// Why a call was refused by a [`Budget`] (nothing was sent).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum OverBudget {
    /// The call alone may cost more than the per-call limit.
    #[error("estimated at {estimate}, over the limit of {limit} CU per call")]
    PerCall {
        /// What the call may cost (its dearest case; an unpriced model at its assumed price).
        estimate: Estimate,
        /// The per-call limit.
        limit: f64,
    },
    /// With what is already spent or reserved, the call may pass the limit in all.
    #[error(
        "estimated at {estimate}; with {committed} CU already spent or reserved it would pass the budget of {limit} CU"
    )]
    Total {
        /// What the call may cost.
        estimate: Estimate,
        /// Compute units counted before it: jobs, and reservations of calls under way.
        committed: f64,
        /// The limit in all.
        limit: f64,
    },
}

#[derive(Debug, Default)]
struct Ledger {
    next: u64,
    /// Reservations of calls whose jobs do not exist yet.
    held: HashMap<u64, f64>,
    /// Jobs and what each counts for.
    jobs: HashMap<Uuid, f64>,
}

#[derive(Debug, Default)]
struct Inner {
    per_call: Option<f64>,
    total: Option<f64>,
    ledger: Mutex<Ledger>,
}

/// A compute-unit budget shared by every call that clones it.
///
/// ```
/// use krea::{Budget, Estimate};
/// let budget = Budget::new(Some(10.0), Some(25.0));
/// let held = budget.reserve(Estimate::assumed(8.0)).expect("fits");
/// // Another call at the same time sees the 8 CU held.
/// let other = budget.reserve(Estimate::assumed(9.0)).expect("8 + 9 fits");
/// assert!(budget.reserve(Estimate::assumed(9.0)).is_err(), "8 + 9 + 9 > 25");
/// held.charge(uuid::Uuid::from_u128(1), 8.0); // its job exists and counts for 8
/// drop(other); // that call created nothing: its 9 CU are free again
/// assert_eq!((budget.spent(), budget.held()), (8.0, 0.0));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Budget {
    inner: Arc<Inner>,
}

impl Budget {
    /// A budget with these limits in compute units (`None`: no limit).
    pub fn new(per_call: Option<f64>, total: Option<f64>) -> Budget {
        Budget {
            inner: Arc::new(Inner {
                per_call,
                total,
                ledger: Mutex::default(),
            }),
        }
    }

    /// No limit: every call fits; jobs are still counted.
    pub fn unlimited() -> Budget {
        Budget::default()
    }

    /// The per-call limit.
    pub fn per_call(&self) -> Option<f64> {
        self.inner.per_call
    }

    /// The limit in all.
    pub fn total(&self) -> Option<f64> {
        self.inner.total
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.inner.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks a call that may cost `estimate` (its `high`: the dearest case) against both
    /// limits and holds that much until the returned reservation is charged or dropped.
    pub fn reserve(&self, estimate: Estimate) -> Result<Reservation, OverBudget> {
        if let Some(limit) = self.inner.per_call.filter(|l| estimate.high > *l) {
            return Err(OverBudget::PerCall { estimate, limit });
        }
        let mut ledger = self.ledger();
        let committed = sum(ledger.jobs.values()) + sum(ledger.held.values());
        if let Some(limit) = self.inner.total.filter(|l| committed + estimate.high > *l) {
            return Err(OverBudget::Total {
                estimate,
                committed,
                limit,
            });
        }
        ledger.next += 1;
        let id = ledger.next;
        ledger.held.insert(id, estimate.high);
        Ok(Reservation {
            budget: self.clone(),
            id,
            left: estimate.high,
        })
    }

    /// Compute units the counted jobs stand for (reservations not included).
    pub fn spent(&self) -> f64 {
        sum(self.ledger().jobs.values())
    }

    /// Compute units held for calls whose jobs do not exist yet.
    pub fn held(&self) -> f64 {
        sum(self.ledger().held.values())
    }

    /// Counts `job` for `cu`, whether or not a call reserved for it: a job found after its
    /// answer was lost (adopted when resuming) counts too.
    pub fn count(&self, job: Uuid, cu: f64) {
        self.ledger().jobs.insert(job, cu);
    }

    /// `job` ended without a charge (failed or cancelled): it stops counting.
    pub fn release(&self, job: Uuid) {
        self.ledger().jobs.remove(&job);
    }

    /// What `job` counts for, if it is counted here.
    pub fn of(&self, job: Uuid) -> Option<f64> {
        self.ledger().jobs.get(&job).copied()
    }
}

fn sum<'a>(values: impl Iterator<Item = &'a f64>) -> f64 {
    values.fold(0.0, |a, b| a + b)
}

/// Compute units a [`Budget`] holds for one call until its jobs exist. Dropping it releases
/// what was not charged (nothing was created, or less than the dearest case).
#[derive(Debug)]
#[must_use = "a reservation is released when dropped"]
pub struct Reservation {
    budget: Budget,
    id: u64,
    left: f64,
}

impl Reservation {
    /// Compute units still held.
    pub fn held(&self) -> f64 {
        self.left
    }

    /// `job` exists and counts for `cu`, taken from what this reservation holds (a call that
    /// creates several jobs charges each); the rest stays held until the reservation is
    /// dropped.
    pub fn charge_one(&mut self, job: Uuid, cu: f64) {
        let mut ledger = self.budget.ledger();
        ledger.jobs.insert(job, cu);
        self.left = (self.left - cu).max(0.0);
        ledger.held.insert(self.id, self.left);
    }

    /// `job` exists and counts for `cu`; the reservation ends.
    pub fn charge(mut self, job: Uuid, cu: f64) {
        self.charge_one(job, cu);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.ledger().held.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_over_either_limit_counting_what_is_held() {
        let b = Budget::new(Some(10.0), Some(25.0));
        assert!(matches!(
            b.reserve(Estimate::assumed(11.0)),
            Err(OverBudget::PerCall { limit: 10.0, .. })
        ));
        let first = b.reserve(Estimate::assumed(9.0)).expect("fits");
        let second = b.reserve(Estimate::assumed(9.0)).expect("fits");
        let over = b.reserve(Estimate::assumed(9.0)).expect_err("8 CU left");
        assert_eq!(
            over,
            OverBudget::Total {
                estimate: Estimate::assumed(9.0),
                committed: 18.0,
                limit: 25.0
            }
        );
        drop(second); // nothing was created
        first.charge(Uuid::from_u128(1), 3.0); // cheaper than the dearest case
        assert_eq!((b.spent(), b.held()), (3.0, 0.0));
        assert!(b.reserve(Estimate::assumed(10.0)).is_ok());
        b.release(Uuid::from_u128(1));
        assert_eq!(b.spent(), 0.0);
    }

    #[test]
    fn a_reservation_charges_each_of_its_jobs() {
        let b = Budget::new(None, Some(12.0));
        let mut r = b.reserve(Estimate::assumed(12.0)).expect("fits");
        r.charge_one(Uuid::from_u128(1), 3.0);
        r.charge_one(Uuid::from_u128(2), 3.0);
        assert_eq!((b.spent(), b.held(), r.held()), (6.0, 6.0, 6.0));
        drop(r);
        assert_eq!((b.spent(), b.held()), (6.0, 0.0));
        b.count(Uuid::from_u128(3), 5.0);
        assert_eq!(b.of(Uuid::from_u128(3)), Some(5.0));
        assert!(b.reserve(Estimate::assumed(2.0)).is_err(), "11 + 2 > 12");
    }

    #[test]
    fn calls_at_once_never_pass_the_budget_together() {
        let b = Budget::new(None, Some(40.0));
        let admitted: Vec<Option<Reservation>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|_| s.spawn(|| b.reserve(Estimate::assumed(34.4)).ok()))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        assert_eq!(admitted.iter().flatten().count(), 1);
    }
}
