//! Verification workflows (CONTRACT §8): dispatch each, find its run, wait for it to succeed.
//! Talks to GitHub only through [`Workflows`]; waits only through [`Clock`].

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::manifest::VerifyWorkflow;
use crate::ports::{Clock, Dispatched, Events, GhError, GhErrorKind, Workflows};

#[derive(Clone, Debug)]
pub struct VerifySettings {
    pub timeout: Duration,
    pub poll: Duration,
}

/// How one verification ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunResult {
    pub workflow: VerifyWorkflow,
    pub url: Option<String>,
    /// GitHub's conclusion (`success`, `failure`, `cancelled`, …) or why there is none.
    pub conclusion: String,
    pub ok: bool,
}

enum Tracking {
    /// Waiting for the run to show up among the workflow's runs. `resend`: the dispatch's
    /// answer was lost, so it may not have happened; dispatch again once if no run appears.
    Lookup {
        since: DateTime<Utc>,
        resend: bool,
    },
    Known {
        id: u64,
        url: String,
    },
    Done(RunResult),
}

/// How long a run may take to appear before a dispatch whose answer was lost is sent again.
const APPEAR_WITHIN: Duration = Duration::from_secs(60);

fn done(w: &VerifyWorkflow, url: Option<String>, conclusion: impl Into<String>) -> Tracking {
    let conclusion = conclusion.into();
    Tracking::Done(RunResult {
        workflow: w.clone(),
        url,
        ok: conclusion == "success",
        conclusion,
    })
}

/// Whether a run title carries `marker` as a whole word (so `…-1` does not match `…-10`).
pub fn title_has_marker(title: &str, marker: &str) -> bool {
    title.match_indices(marker).any(|(at, _)| {
        title[at + marker.len()..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
    })
}

/// One dispatch. `may_resend`: whether a lost answer may later lead to a second dispatch.
async fn dispatch<W: Workflows, C: Clock, E: Events + ?Sized>(
    workflows: &W,
    clock: &C,
    events: &E,
    w: &VerifyWorkflow,
    git_ref: &str,
    inputs: &[(&str, &str)],
    may_resend: bool,
) -> Tracking {
    let since = clock.now();
    let lost = |e: &GhError| {
        events.warn(&format!(
            "{e}; looking for the run before dispatching again"
        ));
        Tracking::Lookup {
            since,
            resend: may_resend,
        }
    };
    match workflows
        .dispatch(&w.repository, &w.workflow, git_ref, inputs)
        .await
    {
        Ok(Dispatched::Run { id, html_url }) => {
            events.info(&format!(
                "dispatched {} in {}: {html_url}",
                w.workflow, w.repository
            ));
            Tracking::Known { id, url: html_url }
        }
        Ok(Dispatched::Accepted) => Tracking::Lookup {
            since,
            resend: false,
        },
        Err(e) if e.uncertain => lost(&e),
        Err(e) => done(w, None, format!("not dispatched: {e}")),
    }
}

/// What one wait for a set of verification runs works with.
struct Verification<'a, W, C, E: ?Sized> {
    workflows: &'a W,
    clock: &'a C,
    events: &'a E,
    entries: &'a [VerifyWorkflow],
    new_key_id: &'a str,
    /// Entry `i`'s rotation id, which its run carries in its title.
    markers: Vec<String>,
    /// How long a run may take to appear before a lost dispatch is sent again.
    appear_within: chrono::Duration,
}

impl<W: Workflows, C: Clock, E: Events + ?Sized> Verification<'_, W, C, E> {
    fn inputs(&self, i: usize) -> [(&str, &str); 2] {
        [
            ("expected-access-key-id", self.new_key_id),
            ("rotation-id", self.markers[i].as_str()),
        ]
    }

    /// Dispatches entry `i` on its ref (the repository's default branch unless it names one).
    async fn start(&self, i: usize) -> (String, Tracking) {
        let w = &self.entries[i];
        let git_ref = match &w.git_ref {
            Some(r) => r.clone(),
            None => match self.workflows.default_branch(&w.repository).await {
                Ok(b) => b,
                Err(e) => return (String::new(), done(w, None, format!("not dispatched: {e}"))),
            },
        };
        let t = dispatch(
            self.workflows,
            self.clock,
            self.events,
            w,
            &git_ref,
            &self.inputs(i),
            true,
        )
        .await;
        (git_ref, t)
    }

    /// Looks for entry `i`'s run among the workflow's runs (none this run already claimed);
    /// dispatches it once more if its answer was lost and no run appeared in time.
    async fn look_up(
        &self,
        i: usize,
        since: DateTime<Utc>,
        resend: bool,
        git_ref: &str,
        claimed: &[u64],
    ) -> Option<Tracking> {
        let w = &self.entries[i];
        let runs = match self
            .workflows
            .recent_runs(&w.repository, &w.workflow, since)
            .await
        {
            Ok(runs) => runs,
            Err(e) => return transient(w, None, e),
        };
        let found = runs.into_iter().find(|r| {
            title_has_marker(&r.display_title, &self.markers[i]) && !claimed.contains(&r.id)
        });
        match found {
            Some(run) => {
                self.events.info(&format!(
                    "found the run of {} in {}: {}",
                    w.workflow, w.repository, run.html_url
                ));
                Some(Tracking::Known {
                    id: run.id,
                    url: run.html_url,
                })
            }
            None if resend && self.clock.now() >= since + self.appear_within => {
                self.events.warn(&format!(
                    "no run of {} in {} appeared: dispatching it again",
                    w.workflow, w.repository
                ));
                let inputs = self.inputs(i);
                Some(
                    dispatch(
                        self.workflows,
                        self.clock,
                        self.events,
                        w,
                        git_ref,
                        &inputs,
                        false,
                    )
                    .await,
                )
            }
            None => None,
        }
    }

    /// Entry `i`'s known run, once more: done when it completed.
    async fn poll(&self, i: usize, id: u64, url: &str) -> Option<Tracking> {
        let w = &self.entries[i];
        match self.workflows.run(&w.repository, id).await {
            Ok(run) if run.status == "completed" => {
                let conclusion = run.conclusion.unwrap_or_else(|| "unknown".into());
                self.events.info(&format!(
                    "{} in {}: {conclusion} ({url})",
                    w.workflow, w.repository
                ));
                Some(done(w, Some(url.to_owned()), conclusion))
            }
            Ok(_) => None,
            Err(e) => transient(w, Some(url.to_owned()), e),
        }
    }
}

/// Dispatches every entry and waits for their runs; stops early when one fails. Entry `i`
/// gets the rotation id `{rotation_id}-{i}`, which its run carries in its title.
pub async fn verify_all<W: Workflows, C: Clock, E: Events + ?Sized>(
    workflows: &W,
    clock: &C,
    events: &E,
    entries: &[VerifyWorkflow],
    new_key_id: &str,
    rotation_id: &str,
    settings: &VerifySettings,
) -> Vec<RunResult> {
    let deadline =
        clock.now() + chrono::Duration::from_std(settings.timeout).unwrap_or(chrono::Duration::MAX);
    let v = Verification {
        workflows,
        clock,
        events,
        entries,
        new_key_id,
        markers: (0..entries.len())
            .map(|i| format!("{rotation_id}-{i}"))
            .collect(),
        appear_within: chrono::Duration::from_std(APPEAR_WITHIN.max(settings.poll * 3))
            .unwrap_or(chrono::Duration::MAX),
    };
    let mut refs = Vec::new();
    let mut tracking = Vec::new();
    for i in 0..entries.len() {
        let (git_ref, t) = v.start(i).await;
        refs.push(git_ref);
        tracking.push(t);
    }
    let mut claimed: Vec<u64> = Vec::new();
    loop {
        for i in 0..entries.len() {
            let next = match &tracking[i] {
                Tracking::Done(_) => continue,
                Tracking::Lookup { since, resend } => {
                    v.look_up(i, *since, *resend, &refs[i], &claimed).await
                }
                Tracking::Known { id, url } => v.poll(i, *id, url).await,
            };
            if let Some(n) = next {
                if let Tracking::Known { id, .. } = &n {
                    claimed.push(*id);
                }
                tracking[i] = n;
            }
        }
        let pending = tracking.iter().any(|t| !matches!(t, Tracking::Done(_)));
        if any_failed(&tracking) || !pending || clock.now() >= deadline {
            break;
        }
        clock.sleep(settings.poll).await;
    }
    results(entries, tracking, settings.timeout)
}

fn any_failed(tracking: &[Tracking]) -> bool {
    tracking
        .iter()
        .any(|t| matches!(t, Tracking::Done(r) if !r.ok))
}

/// How each entry ended: its conclusion, or why it has none.
fn results(
    entries: &[VerifyWorkflow],
    tracking: Vec<Tracking>,
    timeout: Duration,
) -> Vec<RunResult> {
    let within = human(timeout);
    let failed_early = any_failed(&tracking);
    entries
        .iter()
        .zip(tracking)
        .map(|(w, t)| match t {
            Tracking::Done(r) => r,
            Tracking::Known { url, .. } if failed_early => RunResult {
                workflow: w.clone(),
                url: Some(url),
                conclusion: "not awaited: another verification failed".into(),
                ok: false,
            },
            Tracking::Known { url, .. } => RunResult {
                workflow: w.clone(),
                url: Some(url),
                conclusion: format!("did not complete within {within}"),
                ok: false,
            },
            Tracking::Lookup { .. } => RunResult {
                workflow: w.clone(),
                url: None,
                conclusion: format!(
                    "no run appeared within {within} (does the workflow set `run-name` with the rotation-id input?)"
                ),
                ok: false,
            },
        })
        .collect()
}

fn human(d: Duration) -> String {
    match d.as_secs() {
        s if s < 120 => format!("{s} seconds"),
        s => format!("{} minutes", s.div_ceil(60)),
    }
}

/// A read that failed after the adapter's retries: keep waiting unless it can never work.
fn transient(w: &VerifyWorkflow, url: Option<String>, e: GhError) -> Option<Tracking> {
    match e.kind {
        GhErrorKind::Unavailable => None,
        _ => Some(done(w, url, format!("could not follow the run: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::RunInfo;
    use secrecy::SecretString;
    use std::cell::{Cell, RefCell};

    /// Time that moves only when someone sleeps.
    struct FakeClock(Cell<DateTime<Utc>>);
    impl Clock for FakeClock {
        fn now(&self) -> DateTime<Utc> {
            self.0.get()
        }
        async fn sleep(&self, d: Duration) {
            self.0
                .set(self.0.get() + chrono::Duration::from_std(d).unwrap());
        }
    }

    struct Quiet;
    impl Events for Quiet {
        fn mask(&self, _: &SecretString) {}
        fn info(&self, _: &str) {}
        fn warn(&self, _: &str) {}
        fn group(&self, _: &str) {}
        fn end_group(&self) {}
    }

    /// Dispatches answer with `answers` in turn; a dispatch that "landed" creates a run that
    /// appears in listings and completes with success on the first look.
    struct Scripted {
        answers: RefCell<Vec<(bool, Result<Dispatched, GhError>)>>,
        runs: RefCell<Vec<RunInfo>>,
        dispatches: Cell<usize>,
    }
    impl Workflows for Scripted {
        async fn default_branch(&self, _: &str) -> Result<String, GhError> {
            Ok("main".into())
        }
        async fn dispatch(
            &self,
            _: &str,
            _: &str,
            _: &str,
            inputs: &[(&str, &str)],
        ) -> Result<Dispatched, GhError> {
            self.dispatches.set(self.dispatches.get() + 1);
            let (landed, answer) = self.answers.borrow_mut().remove(0);
            if landed {
                let id = 100 + self.runs.borrow().len() as u64;
                self.runs.borrow_mut().push(RunInfo {
                    id,
                    html_url: format!("https://example/runs/{id}"),
                    status: "completed".into(),
                    conclusion: Some("success".into()),
                    display_title: format!("verify {}", inputs[1].1),
                });
            }
            answer
        }
        async fn recent_runs(
            &self,
            _: &str,
            _: &str,
            _: DateTime<Utc>,
        ) -> Result<Vec<RunInfo>, GhError> {
            Ok(self.runs.borrow().clone())
        }
        async fn run(&self, _: &str, id: u64) -> Result<RunInfo, GhError> {
            Ok(self
                .runs
                .borrow()
                .iter()
                .find(|r| r.id == id)
                .unwrap()
                .clone())
        }
    }

    fn lost() -> Result<Dispatched, GhError> {
        Err(GhError {
            kind: GhErrorKind::Unavailable,
            message: "GitHub answered 502".into(),
            uncertain: true,
            status: Some(502),
        })
    }

    fn verify_with(
        answers: Vec<(bool, Result<Dispatched, GhError>)>,
    ) -> (Vec<RunResult>, usize, Duration) {
        let start = Utc::now();
        let clock = FakeClock(Cell::new(start));
        let gh = Scripted {
            answers: RefCell::new(answers),
            runs: RefCell::new(Vec::new()),
            dispatches: Cell::new(0),
        };
        let entry = VerifyWorkflow {
            repository: "acme/web".into(),
            workflow: "v.yml".into(),
            git_ref: None,
        };
        let settings = VerifySettings {
            timeout: Duration::from_secs(600),
            poll: Duration::from_secs(10),
        };
        let results = block_on(verify_all(
            &gh,
            &clock,
            &Quiet,
            &[entry],
            "AKIA1",
            "AKIA1-1",
            &settings,
        ));
        let waited = (clock.now() - start).to_std().unwrap();
        (results, gh.dispatches.get(), waited)
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_lost_answer_whose_dispatch_landed_is_found_not_resent() {
        let (results, dispatches, _) = verify_with(vec![(true, lost())]);
        assert_eq!(dispatches, 1);
        assert!(results[0].ok, "{results:?}");
    }

    #[test]
    fn a_lost_dispatch_is_sent_again_only_after_a_minute_of_looking() {
        let (results, dispatches, waited) =
            verify_with(vec![(false, lost()), (true, Ok(Dispatched::Accepted))]);
        assert_eq!(dispatches, 2);
        assert!(results[0].ok, "{results:?}");
        assert!(waited >= APPEAR_WITHIN, "resent after {waited:?}");
    }

    #[test]
    fn a_second_lost_answer_is_not_followed_by_a_third_dispatch() {
        let (results, dispatches, waited) = verify_with(vec![(false, lost()), (false, lost())]);
        assert_eq!(dispatches, 2);
        assert!(!results[0].ok);
        assert!(
            results[0]
                .conclusion
                .starts_with("no run appeared within 10 minutes"),
            "{results:?}"
        );
        assert!(waited >= Duration::from_secs(600));
    }

    #[test]
    fn markers_match_whole_words_only() {
        assert!(title_has_marker(
            "verify AWS credentials AKIA1-17-1",
            "AKIA1-17-1"
        ));
        assert!(title_has_marker("Verify (AKIA1-17-1)", "AKIA1-17-1"));
        assert!(!title_has_marker(
            "verify AWS credentials AKIA1-17-10",
            "AKIA1-17-1"
        ));
        assert!(!title_has_marker("verify AWS credentials", "AKIA1-17-1"));
    }
}
