//! The session's compute-unit limits, held by the library's [`krea::Budget`]: a call over the
//! per-call limit, or one that would take the session past its budget, is refused before
//! anything is sent, so the assistant has to ask its user. A call reserves its estimate (the
//! dearest case) when it is checked, so calls made at once cannot pass the budget together;
//! its job then counts for it, and a job that fails or is cancelled stops counting. A request
//! that may have created a job it did not hear of keeps its reservation until `resume_jobs`
//! finds what it created.

use std::sync::Mutex;

use krea::{Budget, OverBudget, Reservation};
use uuid::Uuid;

/// What the assistant reads when a call is refused.
pub fn refusal(model: &str, over: &OverBudget) -> String {
    let (estimate, tail) = match over {
        OverBudget::PerCall { estimate, limit } => (
            *estimate,
            format!(
                ", over this server's limit of {limit} CU per call; ask the user before anything dearer (they set --max-cu-per-call)"
            ),
        ),
        OverBudget::Total {
            estimate,
            committed,
            limit,
        } => (
            *estimate,
            format!(
                "; with {committed} CU already spent or reserved this session it would pass the session budget of {limit} CU; ask the user (they set --budget-cu)"
            ),
        ),
        other => (krea::Estimate::zero(), format!(": {other}")),
    };
    let assumed = if estimate.assumed {
        " (Krea publishes no price for it: the ceiling assumed is what counts; `krea --assume-cu` sets another)"
    } else {
        ""
    };
    format!(
        "refused (nothing was sent): this {model} call is estimated at {estimate}{assumed}{tail}"
    )
}

/// Holds of requests whose outcome is not known yet, each under a stand-in id, oldest first:
/// the next job `resume_jobs` adopts takes the oldest one's place.
#[derive(Debug, Default)]
pub struct Unsettled(Mutex<Vec<Uuid>>);

impl Unsettled {
    fn list(&self) -> std::sync::MutexGuard<'_, Vec<Uuid>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `reservation` counting until the job it may have created is found.
    pub fn hold(&self, reservation: Reservation) {
        let stand_in = Uuid::new_v4();
        let cu = reservation.held();
        reservation.charge(stand_in, cu);
        self.list().push(stand_in);
    }

    /// `job` was found by a resume: if this session holds a request with an unknown outcome,
    /// the job counts for `cu` in place of the oldest hold. A job already counted, or one an
    /// earlier session paid for (no hold), changes nothing.
    pub fn adopted(&self, budget: &Budget, job: Uuid, cu: f64) {
        if budget.of(job).is_some() {
            return;
        }
        let mut list = self.list();
        if list.is_empty() {
            return;
        }
        budget.release(list.remove(0));
        budget.count(job, cu);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` Flux images (3 CU each).
    fn flux(n: usize) -> krea::Estimate {
        let model = krea::models::resolve("flux").expect("flux");
        krea::estimate(model, &serde_json::json!({"prompt": "a cat"}))
            .expect("priced")
            .times(n)
    }

    #[test]
    fn refusals_say_which_limit_and_how_to_lift_it() {
        let b = Budget::new(Some(10.0), Some(25.0));
        let per_call = b.reserve(flux(4)).expect_err("12 > 10");
        assert!(refusal("m", &per_call).contains("--max-cu-per-call"));
        let unpriced = b.reserve(krea::Estimate::assumed(11.0)).expect_err("over");
        assert!(refusal("m", &unpriced).contains("no price"));
        let _held = b.reserve(flux(3)).expect("9 CU");
        let _more = b.reserve(flux(3)).expect("18 CU");
        let total = b.reserve(flux(3)).expect_err("27 > 25");
        assert!(refusal("m", &total).contains("session budget of 25 CU"));
    }

    #[test]
    fn an_unknown_outcome_counts_until_its_job_is_adopted_and_then_only_once() {
        let b = Budget::new(None, Some(10.0));
        let unsettled = Unsettled::default();
        unsettled.hold(b.reserve(krea::Estimate::assumed(6.0)).expect("fits"));
        assert_eq!(b.spent(), 6.0);
        assert!(b.reserve(krea::Estimate::assumed(5.0)).is_err());
        unsettled.adopted(&b, Uuid::from_u128(7), 3.0);
        assert_eq!(b.spent(), 3.0);
        unsettled.adopted(&b, Uuid::from_u128(7), 3.0);
        assert_eq!(b.spent(), 3.0, "counted once");
        unsettled.adopted(&b, Uuid::from_u128(8), 3.0);
        assert_eq!(
            b.spent(),
            3.0,
            "an earlier session's job: no hold, not counted"
        );
    }
}
