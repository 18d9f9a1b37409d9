//! Which listed job each lost answer created, decided from stamps alone (no I/O here).
//!
//! Each request with a lost answer has two windows on Krea's clock: *usual*, where its job is
//! stamped when Krea creates it as it creates every job (the measured send-to-stamp lag), and
//! *possible*, anywhere from its send to the end of its exchange plus the settle grace (a job
//! committed after a gateway gave up). Candidates are listed jobs no journal entry claims.
//!
//! 1. A candidate alone in a request's usual window, that window holding no other candidate and
//!    no other request's usual window holding it, is that request's job: adopted at once, while
//!    no other program is seen creating jobs on the account.
//! 2. Requests and candidates left are grouped by their possible windows. A group is decided
//!    only when every request in it is *ready* (its grace and the listing lag have passed, so
//!    every job it could have created is listed) and may be decided by this client. Jobs are
//!    matched to requests in time order (the most jobs possible); one request and one job alone
//!    in a group, with no unclaimed job anywhere else in sight (no other program at work), is
//!    certain; anything else is adopted with its doubt stated. Requests left without a job created nothing; when other
//!    jobs were in their window, which of the group's requests created nothing is a choice,
//!    and says so. Never more jobs are deemed missing than the group provably lacks.
//! 3. A request whose answer was a success status created a job: it is never deemed not created.

use std::collections::HashSet;

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use crate::evidence::precision;

/// A stretch of Krea's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub lo: DateTime<Utc>,
    pub hi: DateTime<Utc>,
}

impl Span {
    /// Whether a stamp written with `slack` precision may stand for an instant in here.
    pub fn holds(&self, at: DateTime<Utc>, slack: TimeDelta) -> bool {
        at + slack >= self.lo && at - slack <= self.hi
    }
}

/// Who may decide a request's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// This client (its request, or one whose client is gone).
    Us,
    /// In flight in this or another running client: its answer will come. It keeps the job in
    /// its usual window and takes no part in groups.
    InFlight,
}

/// A request whose outcome is not known.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// Where its job is usually stamped (`None`: not measured yet).
    pub usual: Option<Span>,
    /// `usual` is in stamps as written (measured from stamps), not in instants: compared
    /// without the stamps' precision.
    pub usual_in_stamps: bool,
    /// Where its job can be stamped at all (`None`: nothing is known of Krea's clock).
    pub possible: Option<Span>,
    /// Every job it could have created is listed by now.
    pub ready: bool,
    pub owner: Owner,
    /// A success status came back: its job exists.
    pub created: bool,
}

/// A listed job nobody claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub id: Uuid,
    pub at: DateTime<Utc>,
}

impl Candidate {
    fn slack(&self) -> TimeDelta {
        precision(self.at)
    }
}

/// What to record for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// It created this job; `doubt` says why that is not certain, when it is not.
    Adopt { job: Uuid, doubt: Option<String> },
    /// It created nothing.
    NotCreated { doubt: Option<String> },
    /// Not yet (why).
    Wait(String),
}

/// The most jobs a doubt names.
const NAMED: usize = 500;

/// Decides every request, with the rate of other programs' jobs measured over a history long
/// enough to trust (see [`decide_with`]).
#[cfg(test)]
pub(crate) fn decide(requests: &[Request], candidates: &[Candidate], others: f64) -> Vec<Decision> {
    decide_with(requests, candidates, others, true)
}

/// Decides every request. `others` is the rate (jobs per second) at which jobs no request of
/// this journal can have made were listed: another program using the account. While it is
/// above zero, every job found by time alone is adopted with the doubt said.
/// `rate_known`: the account's history seen is long enough for a rate of zero to mean
/// something; on a young account a request is decided only once it is ready (by then jobs
/// another program made around it are listed too), never from its usual window at once.
pub(crate) fn decide_with(
    requests: &[Request],
    candidates: &[Candidate],
    others: f64,
    rate_known: bool,
) -> Vec<Decision> {
    let mut out: Vec<Option<Decision>> = vec![None; requests.len()];
    let mut taken: HashSet<usize> = HashSet::new();
    // A window measured in stamps compares stamps as written; one on Krea's clock allows for
    // a coarse stamp standing for any instant within its precision.
    let usual_holds = |r: &Request, c: &Candidate| {
        let slack = match r.usual_in_stamps {
            true => TimeDelta::zero(),
            false => c.slack(),
        };
        r.usual.is_some_and(|u| u.holds(c.at, slack))
    };
    // 1. Alone in its usual window, and that window alone around it.
    let in_usual: Vec<Vec<usize>> = requests
        .iter()
        .map(|r| {
            (0..candidates.len())
                .filter(|&c| usual_holds(r, &candidates[c]))
                .collect()
        })
        .collect();
    let holders = |c: usize| {
        requests
            .iter()
            .filter(|r| usual_holds(r, &candidates[c]))
            .count()
    };
    // While another program is seen creating jobs on the account, a window decides nothing on
    // its own, however narrow: its jobs need not fall at random (another replica of the same
    // service sends when this one does), so the chance it landed here cannot be bounded.
    let quiet = others == 0.0;
    let narrow = |r: &Request| quiet && r.usual.is_some();
    for (i, r) in requests.iter().enumerate() {
        if let [c] = in_usual[i][..]
            && holders(c) == 1
            && ((narrow(r) && (rate_known || r.ready)) || r.owner != Owner::Us)
        {
            taken.insert(c);
            out[i] = Some(match r.owner {
                Owner::Us => Decision::Adopt {
                    job: candidates[c].id,
                    doubt: None,
                },
                Owner::InFlight => Decision::Wait("its answer may still come".into()),
            });
        }
    }
    // In-flight requests keep whatever lies in their usual windows.
    for (i, r) in requests.iter().enumerate() {
        if r.owner == Owner::InFlight {
            taken.extend(in_usual[i].iter().copied());
            out[i].get_or_insert(Decision::Wait("its answer may still come".into()));
        }
    }
    // 2. Groups by possible windows.
    let open: Vec<usize> = (0..requests.len()).filter(|&i| out[i].is_none()).collect();
    let free: Vec<usize> = (0..candidates.len())
        .filter(|c| !taken.contains(c))
        .collect();
    let possible_holds = |i: usize, c: usize| {
        requests[i]
            .possible
            .is_some_and(|p| p.holds(candidates[c].at, candidates[c].slack()))
    };
    for group in groups(&open, &free, possible_holds) {
        decide_group(
            requests,
            candidates,
            &group,
            others,
            &possible_holds,
            &mut out,
        );
    }
    out.into_iter()
        .map(|d| d.unwrap_or_else(|| Decision::Wait("not decided".into())))
        .collect()
}

/// A group of requests and the candidates their possible windows share.
struct Group {
    requests: Vec<usize>,
    candidates: Vec<usize>,
}

/// Connected groups of `requests` and `candidates` linked by `holds`.
fn groups(
    requests: &[usize],
    candidates: &[usize],
    holds: impl Fn(usize, usize) -> bool,
) -> Vec<Group> {
    // Union-find over requests; a candidate joins every request holding it.
    let mut parent: Vec<usize> = (0..requests.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut owner_of: Vec<Option<usize>> = vec![None; candidates.len()];
    for (ci, &c) in candidates.iter().enumerate() {
        for (ri, &r) in requests.iter().enumerate() {
            if !holds(r, c) {
                continue;
            }
            match owner_of[ci] {
                None => owner_of[ci] = Some(ri),
                Some(first) => {
                    let (a, b) = (root(&mut parent, first), root(&mut parent, ri));
                    parent[a] = b;
                }
            }
        }
    }
    let mut by_root: std::collections::BTreeMap<usize, Group> = Default::default();
    for (ri, &request) in requests.iter().enumerate() {
        let r = root(&mut parent, ri);
        by_root
            .entry(r)
            .or_insert_with(|| Group {
                requests: Vec::new(),
                candidates: Vec::new(),
            })
            .requests
            .push(request);
    }
    for (ci, owner) in owner_of.iter().enumerate() {
        if let Some(ri) = owner {
            let r = root(&mut parent, *ri);
            if let Some(g) = by_root.get_mut(&r) {
                g.candidates.push(candidates[ci]);
            }
        }
    }
    by_root.into_values().collect()
}

fn decide_group(
    requests: &[Request],
    candidates: &[Candidate],
    group: &Group,
    others: f64,
    holds: &impl Fn(usize, usize) -> bool,
    out: &mut [Option<Decision>],
) {
    let wait = |why: &str, out: &mut [Option<Decision>]| {
        for &i in &group.requests {
            out[i] = Some(Decision::Wait(why.into()));
        }
    };
    if group
        .requests
        .iter()
        .any(|&i| requests[i].possible.is_none())
    {
        return wait("nothing is known of Krea's clock yet", out);
    }
    if group.requests.iter().any(|&i| !requests[i].ready) {
        return wait(
            "its job may still appear (the settle grace has not passed)",
            out,
        );
    }
    // Time order: each job, earliest first, to the open request whose window ends first.
    let mut jobs = group.candidates.clone();
    jobs.sort_by_key(|&c| candidates[c].at);
    let mut matched: Vec<Option<usize>> = vec![None; requests.len()];
    for &c in &jobs {
        let pick = group
            .requests
            .iter()
            .copied()
            .filter(|&i| matched[i].is_none() && holds(i, c))
            .min_by_key(|&i| requests[i].possible.map(|p| p.hi));
        if let Some(i) = pick {
            matched[i] = Some(c);
        }
    }
    let (k, m) = (group.requests.len(), group.candidates.len());
    // The jobs in the window are named, so one left unadopted is still reported.
    // Every one of them: a job of this client's left unadopted is reported only here (a
    // crowded window holds tens, not thousands; past NAMED the count says how many more).
    let named = || {
        let ids: Vec<String> = jobs
            .iter()
            .take(NAMED)
            .map(|&c| candidates[c].id.to_string())
            .collect();
        let more = match m.saturating_sub(NAMED) {
            0 => String::new(),
            n => format!(" and {n} more (`krea jobs list` shows them)"),
        };
        format!("jobs in the window: {}{more}", ids.join(", "))
    };
    // Another program at work: a job found by time alone may be its (see `decide_with`).
    let crowded = others > 0.0;
    let doubt = if k == 1 && m <= 1 && !crowded {
        None
    } else if k == 1 && m <= 1 {
        Some(format!(
            "found by time alone while another program was creating jobs on the account ({:.1} a minute); {}",
            others * 60.0,
            named()
        ))
    } else {
        Some(format!(
            "{k} requests with lost answers and {m} unclaimed jobs fell in the same window and were matched in time order; {}",
            named()
        ))
    };
    for &i in &group.requests {
        out[i] = Some(match matched[i] {
            Some(c) => Decision::Adopt {
                job: candidates[c].id,
                doubt: doubt.clone(),
            },
            None if requests[i].created => Decision::Wait(
                "a success answer says its job exists; it is not in the listing yet".into(),
            ),
            None if m == 0 => Decision::NotCreated { doubt: None },
            None => Decision::NotCreated {
                doubt: doubt.clone(),
            },
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> DateTime<Utc> {
        // A stamp with a sub-millisecond part: microsecond precision.
        DateTime::<Utc>::from_timestamp_micros(1_800_000_000_000_000 + ms * 1000 + 1)
            .unwrap_or_default()
    }

    fn span(lo: i64, hi: i64) -> Option<Span> {
        Some(Span {
            lo: t(lo),
            hi: t(hi),
        })
    }

    /// A lost answer sent at `sent` ms whose exchange ended at `end` ms: usual stamps 100-110
    /// ms after the send, possible ones up to 10 s after the end.
    fn lost(sent: i64, end: i64) -> Request {
        Request {
            usual: span(sent + 100, sent + 110),
            usual_in_stamps: true,
            possible: span(sent, end + 10_000),
            ready: true,
            owner: Owner::Us,
            created: false,
        }
    }

    fn job(n: u128, at: i64) -> Candidate {
        Candidate {
            id: Uuid::from_u128(n),
            at: t(at),
        }
    }

    #[test]
    fn a_job_in_a_usual_window_is_adopted_at_once_and_another_programs_is_left() {
        let mut r = lost(0, 200);
        r.ready = false;
        // Ours 105 ms after the send; another program's 400 ms after it.
        let d = decide(&[r], &[job(1, 105), job(2, 400)], 0.0);
        assert_eq!(
            d,
            vec![Decision::Adopt {
                job: Uuid::from_u128(1),
                doubt: None
            }]
        );
    }

    #[test]
    fn a_crowded_window_names_every_job_in_it_so_none_of_ours_goes_unreported() {
        // Three lost answers, fourteen unclaimed jobs (another program's among them): whichever
        // are not adopted must still be named (the fault suite lost one at the eleventh).
        let requests = [lost(0, 50), lost(30, 80), lost(60, 110)];
        let jobs: Vec<Candidate> = (0..14).map(|n| job(n + 1, 100 + 150 * n as i64)).collect();
        let d = decide(&requests, &jobs, 0.0);
        let doubts: Vec<&str> = d
            .iter()
            .filter_map(|d| match d {
                Decision::Adopt { doubt, .. } | Decision::NotCreated { doubt } => doubt.as_deref(),
                Decision::Wait(_) => None,
            })
            .collect();
        assert!(!doubts.is_empty(), "{d:?}");
        let adopted: Vec<Uuid> = d
            .iter()
            .filter_map(|d| match d {
                Decision::Adopt { job, .. } => Some(*job),
                _ => None,
            })
            .collect();
        for j in jobs.iter().filter(|j| !adopted.contains(&j.id)) {
            assert!(
                doubts.iter().all(|t| t.contains(&j.id.to_string())),
                "{} unnamed: {doubts:?}",
                j.id
            );
        }
    }

    #[test]
    fn on_a_young_account_a_usual_window_decides_nothing_before_the_request_is_ready() {
        // No other program seen yet, but the history is too short for that to mean much:
        // another program's job may be the one in the window.
        let mut r = lost(0, 200);
        r.ready = false;
        let jobs = [job(1, 105)];
        assert!(matches!(
            decide_with(&[r.clone()], &jobs, 0.0, false)[0],
            Decision::Wait(_)
        ));
        r.ready = true;
        assert_eq!(
            decide_with(&[r], &jobs, 0.0, false),
            vec![Decision::Adopt {
                job: Uuid::from_u128(1),
                doubt: None
            }]
        );
    }

    #[test]
    fn a_late_commit_is_adopted_only_once_ready_and_nothing_is_not_created_before() {
        let mut r = lost(0, 200);
        r.ready = false;
        let jobs = [job(7, 2_200)];
        assert!(matches!(
            decide(&[r.clone()], &jobs, 0.0)[0],
            Decision::Wait(_)
        ));
        assert!(matches!(
            decide(&[r.clone()], &[], 0.0)[0],
            Decision::Wait(_)
        ));
        r.ready = true;
        assert_eq!(
            decide(&[r.clone()], &jobs, 0.0),
            vec![Decision::Adopt {
                job: Uuid::from_u128(7),
                doubt: None
            }]
        );
        assert!(
            matches!(
                &decide(&[r.clone()], &jobs, 0.5)[0],
                Decision::Adopt { doubt: Some(_), .. }
            ),
            "another program in sight: said so"
        );
        assert_eq!(
            decide(&[r], &[], 0.0),
            vec![Decision::NotCreated { doubt: None }]
        );
    }

    #[test]
    fn lost_answers_sharing_a_window_never_make_more_jobs_missing_than_are() {
        // Five requests 2 ms apart, all answered 504 at 300 ms; their jobs committed 2 s later.
        let requests: Vec<Request> = (0..5).map(|i| lost(i * 2, 300 + i * 2)).collect();
        let jobs: Vec<Candidate> = (0..5).map(|i| job(i as u128, 2_300 + i * 2)).collect();
        let d = decide(&requests, &jobs, 0.0);
        for (i, d) in d.iter().enumerate() {
            match d {
                Decision::Adopt { job, doubt } => {
                    assert_eq!(*job, Uuid::from_u128(i as u128), "time order");
                    assert!(doubt.is_some(), "five alike: said so");
                }
                other => panic!("{i}: {other:?}"),
            }
        }
        // Two of three lost answers created a job: exactly one is missing.
        let requests: Vec<Request> = (0..3).map(|i| lost(i * 2, 300)).collect();
        let d = decide(&requests, &[job(1, 2_000), job(2, 2_500)], 0.0);
        let missing = d
            .iter()
            .filter(|d| matches!(d, Decision::NotCreated { doubt: Some(_) }))
            .count();
        assert_eq!(missing, 1, "{d:?}");
    }

    #[test]
    fn a_job_alone_in_a_wide_window_while_another_program_works_is_adopted_with_doubt() {
        // A window a second and a half wide (whole-second stamps), another program making a
        // job every two seconds: its job may be the one in the window.
        let mut r = lost(0, 200);
        r.usual = span(-1_400, 100);
        let d = decide(&[r.clone()], &[job(4, 50)], 0.5);
        assert!(
            matches!(&d[0], Decision::Adopt { doubt: Some(_), .. }),
            "{d:?}"
        );
        // Not early: the group waits until every job of it is listed.
        r.ready = false;
        assert!(matches!(
            decide(&[r], &[job(4, 50)], 0.5)[0],
            Decision::Wait(_)
        ));
    }

    #[test]
    fn any_other_program_at_work_makes_a_time_only_adoption_uncertain() {
        // A narrow usual window and a rare other program (a job every 17 minutes or so): the
        // window's odds once made this certain, but that program may send when this one does.
        let d = decide(&[lost(0, 200)], &[job(1, 105)], 0.001);
        assert!(
            matches!(&d[0], Decision::Adopt { doubt: Some(why), .. } if why.contains(&Uuid::from_u128(1).to_string())),
            "{d:?}"
        );
        // No other program seen: certain, as before.
        assert_eq!(
            decide(&[lost(0, 200)], &[job(1, 105)], 0.0),
            vec![Decision::Adopt {
                job: Uuid::from_u128(1),
                doubt: None
            }]
        );
    }

    #[test]
    fn a_success_answer_is_never_deemed_not_created() {
        let mut r = lost(0, 100);
        r.created = true;
        assert!(matches!(decide(&[r], &[], 0.0)[0], Decision::Wait(_)));
    }

    #[test]
    fn requests_in_flight_keep_their_jobs() {
        let mut flying = lost(500, 500);
        flying.owner = Owner::InFlight;
        let mine = lost(0, 200);
        // The in-flight request's job (usual window) is not mine; mine created nothing.
        let d = decide(&[mine.clone(), flying], &[job(9, 605)], 0.0);
        assert_eq!(d[0], Decision::NotCreated { doubt: None });
        assert!(matches!(d[1], Decision::Wait(_)));
    }

    #[test]
    fn whole_second_stamps_are_matched_with_a_second_of_slack() {
        let mut r = lost(0, 200);
        // Nothing measured: the usual window is the exchange on Krea's clock.
        r.usual = span(0, 200);
        r.usual_in_stamps = false;
        // The job at 0.105 s, written as the whole second before.
        let stamp = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let d = decide(
            &[r],
            &[Candidate {
                id: Uuid::from_u128(3),
                at: stamp,
            }],
            0.0,
        );
        assert_eq!(
            d,
            vec![Decision::Adopt {
                job: Uuid::from_u128(3),
                doubt: None
            }]
        );
    }
}
