//! Verification workflows (CONTRACT §8): dispatch each, find its run, wait for it to succeed.
//! Talks to GitHub only through [`Workflows`]; waits only through [`Clock`].

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::manifest::VerifyWorkflow;
use crate::ports::{Clock, DispatchError, Dispatched, Events, GhError, Workflows};

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
    /// Waiting for the run to show up; `resend` once if it never does (the dispatch may
    /// have been lost — but only after looking).
    Lookup {
        since: DateTime<Utc>,
        resend: bool,
        details: bool,
        git_ref: String,
    },
    Known {
        id: u64,
        url: String,
    },
    Done(RunResult),
}

/// Polls before a run that may have been lost is dispatched again.
const LOOK_BEFORE_RESEND: u32 = 3;

fn done(w: &VerifyWorkflow, url: Option<String>, conclusion: impl Into<String>) -> Tracking {
    let conclusion = conclusion.into();
    Tracking::Done(RunResult {
        workflow: w.clone(),
        url,
        ok: conclusion == "success",
        conclusion,
    })
}

/// Dispatches every entry and waits for their runs; stops early when one fails.
pub async fn verify_all<W: Workflows, C: Clock, E: Events>(
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
    let inputs = [
        ("expected-access-key-id", new_key_id),
        ("rotation-id", rotation_id),
    ];
    let mut tracking = Vec::new();
    for w in entries {
        let git_ref = match &w.git_ref {
            Some(r) => r.clone(),
            None => match workflows.default_branch(&w.repository).await {
                Ok(b) => b,
                Err(e) => {
                    tracking.push(done(w, None, format!("not dispatched: {e}")));
                    continue;
                }
            },
        };
        let since = clock.now();
        let t = match workflows
            .dispatch(&w.repository, &w.workflow, &git_ref, &inputs, true)
            .await
        {
            Ok(Dispatched::Run { id, html_url }) => Tracking::Known { id, url: html_url },
            Ok(Dispatched::Accepted) => Tracking::Lookup {
                since,
                resend: false,
                details: true,
                git_ref,
            },
            Err(DispatchError::DetailsUnsupported) => {
                match workflows
                    .dispatch(&w.repository, &w.workflow, &git_ref, &inputs, false)
                    .await
                {
                    Ok(_) => Tracking::Lookup {
                        since,
                        resend: false,
                        details: false,
                        git_ref,
                    },
                    Err(DispatchError::Failed(e)) if e.uncertain => Tracking::Lookup {
                        since,
                        resend: true,
                        details: false,
                        git_ref,
                    },
                    Err(DispatchError::Failed(e)) => done(w, None, format!("not dispatched: {e}")),
                    Err(DispatchError::DetailsUnsupported) => {
                        done(w, None, "not dispatched: GitHub refused the dispatch")
                    }
                }
            }
            Err(DispatchError::Failed(e)) if e.uncertain => {
                events.warn(&format!(
                    "{e}; looking for the run before dispatching again"
                ));
                Tracking::Lookup {
                    since,
                    resend: true,
                    details: true,
                    git_ref,
                }
            }
            Err(DispatchError::Failed(e)) => done(w, None, format!("not dispatched: {e}")),
        };
        if let Tracking::Known { url, .. } = &t {
            events.info(&format!(
                "dispatched {} in {}: {url}",
                w.workflow, w.repository
            ));
        }
        tracking.push(t);
    }

    let mut polls = 0u32;
    loop {
        for (w, t) in entries.iter().zip(tracking.iter_mut()) {
            let next = match t {
                Tracking::Done(_) => continue,
                Tracking::Lookup {
                    since,
                    resend,
                    details,
                    git_ref,
                } => {
                    match workflows
                        .find_run(&w.repository, &w.workflow, rotation_id, *since)
                        .await
                    {
                        Ok(Some(run)) => {
                            events.info(&format!(
                                "found the run of {} in {}: {}",
                                w.workflow, w.repository, run.html_url
                            ));
                            Some(Tracking::Known {
                                id: run.id,
                                url: run.html_url,
                            })
                        }
                        Ok(None) if *resend && polls >= LOOK_BEFORE_RESEND => {
                            events.warn(&format!(
                                "no run of {} in {} appeared: dispatching it again",
                                w.workflow, w.repository
                            ));
                            *resend = false;
                            if let Err(e) = workflows
                                .dispatch(&w.repository, &w.workflow, git_ref, &inputs, *details)
                                .await
                            {
                                Some(done(w, None, format!("not dispatched: {}", describe(e))))
                            } else {
                                None
                            }
                        }
                        Ok(None) => None,
                        Err(e) => transient(w, None, e),
                    }
                }
                Tracking::Known { id, url } => match workflows.run(&w.repository, *id).await {
                    Ok(run) if run.status == "completed" => {
                        let conclusion = run.conclusion.unwrap_or_else(|| "unknown".into());
                        events.info(&format!(
                            "{} in {}: {conclusion} ({url})",
                            w.workflow, w.repository
                        ));
                        Some(done(w, Some(url.clone()), conclusion))
                    }
                    Ok(_) => None,
                    Err(e) => transient(w, Some(url.clone()), e),
                },
            };
            if let Some(n) = next {
                *t = n;
            }
        }
        let failed = tracking
            .iter()
            .any(|t| matches!(t, Tracking::Done(r) if !r.ok));
        let pending = tracking.iter().any(|t| !matches!(t, Tracking::Done(_)));
        if failed || !pending || clock.now() >= deadline {
            break;
        }
        clock.sleep(settings.poll).await;
        polls += 1;
    }

    let within = human(settings.timeout);
    let failed_early = tracking
        .iter()
        .any(|t| matches!(t, Tracking::Done(r) if !r.ok));
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

fn describe(e: DispatchError) -> String {
    match e {
        DispatchError::DetailsUnsupported => "GitHub refused the dispatch".into(),
        DispatchError::Failed(e) => e.to_string(),
    }
}

/// A read that failed after the adapter's retries: keep waiting unless it can never work.
fn transient(w: &VerifyWorkflow, url: Option<String>, e: GhError) -> Option<Tracking> {
    match e.kind {
        crate::ports::GhErrorKind::Unavailable => None,
        _ => Some(done(w, url, format!("could not follow the run: {e}"))),
    }
}
