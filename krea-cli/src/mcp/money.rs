//! The session's compute-unit limits: a call over the per-call limit, or one that would take
//! the session past its budget, is refused before anything is sent, so the assistant has to ask
//! its user. What a job counts is its estimate (the dearest case), from submission on; a job
//! that fails or is cancelled is not charged and stops counting.

use std::collections::HashMap;
use std::sync::Mutex;

use krea::Estimate;
use uuid::Uuid;

#[derive(Debug)]
pub struct Money {
    per_call: Option<f64>,
    budget: Option<f64>,
    /// Jobs of this session and what each counts.
    jobs: Mutex<HashMap<Uuid, f64>>,
}

impl Money {
    pub fn new(per_call: Option<f64>, budget: Option<f64>) -> Money {
        Money {
            per_call,
            budget,
            jobs: Mutex::default(),
        }
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, f64>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Compute units this session's jobs count for.
    pub fn spent(&self) -> f64 {
        self.jobs().values().fold(0.0, |sum, cu| sum + cu)
    }

    /// Why a call estimated at `estimate` (at most; a model with no published price at its
    /// assumed price) may not be sent, or `None` when it may.
    pub fn refusal(&self, model: &str, e: Estimate) -> Option<String> {
        let assumed = if e.assumed {
            " (Krea publishes no price for it: the ceiling assumed is what counts; `krea --assume-cu` sets another)"
        } else {
            ""
        };
        if let Some(max) = self.per_call.filter(|max| e.high > *max) {
            return Some(format!(
                "refused (nothing was sent): this {model} call is estimated at {e}{assumed}, over this server's limit of {max} CU per call; ask the user before anything dearer (they set --max-cu-per-call)"
            ));
        }
        let spent = self.spent();
        if let Some(budget) = self.budget.filter(|b| spent + e.high > *b) {
            return Some(format!(
                "refused (nothing was sent): this {model} call is estimated at {e}{assumed}; with {spent} CU already spent this session it would pass the session budget of {budget} CU; ask the user (they set --budget-cu)"
            ));
        }
        None
    }

    /// `job` now counts for `cu`.
    pub fn charge(&self, job: Uuid, cu: f64) {
        self.jobs().insert(job, cu);
    }

    /// `job` ended without a charge (failed or cancelled).
    pub fn release(&self, job: Uuid) {
        self.jobs().remove(&job);
    }

    /// What `job` counts for, if it is this session's.
    pub fn of(&self, job: Uuid) -> Option<f64> {
        self.jobs().get(&job).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` Flux images (3 CU each).
    fn flux(n: usize) -> Estimate {
        let model = krea::models::resolve("flux").expect("flux");
        krea::estimate(model, &serde_json::json!({"prompt": "a cat"}))
            .expect("priced")
            .times(n)
    }

    #[test]
    fn refuses_over_either_limit_and_holds_unpriced_calls_at_their_assumed_price() {
        assert_eq!(flux(1).exact(), Some(3.0));
        let free = Money::new(None, None);
        assert!(free.refusal("m", Estimate::assumed(1e9)).is_none());
        let m = Money::new(Some(10.0), Some(25.0));
        assert!(m.refusal("m", flux(3)).is_none());
        assert!(
            m.refusal("m", flux(4))
                .expect("refused")
                .contains("per call")
        );
        assert!(m.refusal("m", Estimate::assumed(8.0)).is_none());
        assert!(
            m.refusal("m", Estimate::assumed(11.0))
                .expect("refused")
                .contains("no price")
        );
        m.charge(Uuid::from_u128(1), 9.0);
        m.charge(Uuid::from_u128(2), 9.0);
        assert!(m.refusal("m", flux(2)).is_none());
        assert!(
            m.refusal("m", flux(3))
                .expect("refused")
                .contains("session budget")
        );
        m.release(Uuid::from_u128(2));
        assert_eq!(m.spent(), 9.0);
        assert!(m.refusal("m", flux(3)).is_none());
    }
}
