//! A person told (CONTRACT §16): one GitHub issue per user that needs a person, found again by
//! its label and title, commented on when the reason changes, closed when the user is healthy.
//!
//! What to do is decided here without I/O ([`decide`]); [`tell`] reads and writes the issues
//! through the [`Issues`] port (GitHub's REST API in `github::issues`). Issues never change a
//! run's result: anything refused or lost is a warning.

use base64::Engine as _;

use crate::exit::Exit;
use crate::rotation::run::{Outcome, UserReport};

/// Every issue the tool opens carries this label.
pub const LABEL: &str = "aws-key-rotator";

/// The hidden line that records which reason an issue (or a comment) was written for.
const MARKER: &str = "<!-- aws-key-rotator:reason=";

/// The reason key of a "healthy again" comment: `*` is outside base64url, so no reason has it.
const HEALTHY: &str = "*";

pub use crate::ports::issues::{Comment, Found, IssueError, Issues};

/// The title of a user's issue.
pub fn title(user: &str) -> String {
    format!("aws-key-rotator: {user} needs a person")
}

/// Whose markers are believed on issue `found` (CONTRACT §12a): the tool's own identity (`me`:
/// the token's user), or, when the token cannot say who it is (an installation token, whose
/// actions are an App's bot), the issue's author when that is a bot: an issue with the label
/// was opened by someone who may label, and a bot acts only for its App. Anyone else's
/// comment, however it is worded, is text a person reads, never a record of the tool's.
pub fn trusted_author<'a>(found: &'a Found, me: Option<&'a str>) -> Option<&'a str> {
    match me {
        Some(me) => Some(me),
        None => Some(found.author.as_str()).filter(|a| a.ends_with("[bot]")),
    }
}

/// `found` and the bodies of `comments` that its trusted author wrote (an untrusted body is
/// read as empty): what [`decide`] may believe.
pub fn believed(found: &Found, comments: &[Comment], me: Option<&str>) -> (Found, Vec<String>) {
    let trusted = trusted_author(found, me);
    let by_us = |a: &str| trusted.is_some_and(|t| t.eq_ignore_ascii_case(a));
    let mut f = found.clone();
    if !by_us(&found.author) {
        f.body = String::new();
    }
    let said = comments
        .iter()
        .filter(|c| by_us(&c.author))
        .map(|c| c.body.clone())
        .collect();
    (f, said)
}

/// Where a user stands, for its issue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// It needs a person, for this reason.
    Person(String),
    /// Nothing needs a person: an open issue is closed.
    Healthy,
    /// The run could not tell (it failed, was stopped, or the input was bad): the issue stays
    /// as it is.
    Unknown,
}

/// A user's standing from its report: exit 3 needs a person (§4); a run that ended well with
/// nothing asked of a person is healthy; anything else tells nothing.
pub fn standing(report: &UserReport) -> Standing {
    match (report.exit(), &report.attention, &report.outcome) {
        (Exit::Refused, Some(why), _) => Standing::Person(why.clone()),
        (Exit::Refused, None, Outcome::Refused(why)) => Standing::Person(why.clone()),
        (Exit::Ok, None, Outcome::Deferred(_)) => Standing::Unknown,
        (Exit::Ok, None, _) => Standing::Healthy,
        _ => Standing::Unknown,
    }
}

/// What the run needs to say besides the reason.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// The command that found it (`deactivate`, …).
    pub command: String,
    /// The manifest, as the workflow names it.
    pub config: String,
    /// This workflow run's page, when the run is one.
    pub run_url: Option<String>,
}

/// What to do with a user's issue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Act {
    Nothing,
    Open {
        title: String,
        body: String,
    },
    Comment {
        number: u64,
        body: String,
    },
    /// Closes it, after `comment` (none when an earlier run already said it is healthy and
    /// only its close was lost).
    Close {
        number: u64,
        comment: Option<String>,
    },
}

/// A reason with its numbers taken out (times, ages, counts), so that the same reason seen on
/// a later day is the same; a different key id or cause is a different reason.
pub fn reason_key(reason: &str) -> String {
    let letters: String = reason
        .chars()
        .filter(|c| !c.is_ascii_digit())
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(letters.as_bytes())
}

fn marker(reason: &str) -> String {
    format!("{MARKER}{} -->", reason_key(reason))
}

/// The reason key the last marked text of `texts` (in order) records.
pub fn last_reason<'a>(texts: impl IntoIterator<Item = &'a str>) -> Option<String> {
    texts
        .into_iter()
        .filter_map(|t| {
            let at = t.rfind(MARKER)?;
            let rest = &t[at + MARKER.len()..];
            Some(rest.split(" -->").next()?.trim().to_owned())
        })
        .last()
}

/// The words a person reads: the reason, what to run, the run.
fn said(user: &str, reason: &str, ctx: &Context) -> String {
    let mut md = format!(
        "**Why:** {}\n\n**What to run:** see where it stands with `aws-key-rotator status --config {} --user {}` (or the workflow's `status` job), do what the reason asks, and run `{}` again; the README's \"Key states\" says what each state needs. This issue is closed by the first run that finds the user healthy.\n",
        crate::report::escape_markdown(reason),
        quoted(&ctx.config),
        quoted(user),
        ctx.command,
    );
    if let Some(url) = ctx
        .run_url
        .as_deref()
        .filter(|u| crate::report::plain_url(u))
    {
        md.push_str(&format!("\n**Run:** {url}\n"));
    }
    md.push_str(&format!("\n{}\n", marker(reason)));
    md
}

/// A value for a shell line in backticks: as it is when plain, else single-quoted.
fn quoted(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./@".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace(['\'', '`'], ""))
    }
}

/// What to do about `user`'s issue (`found`: the open one, with its comments' bodies).
pub fn decide(
    user: &str,
    standing: &Standing,
    found: Option<(&Found, &[String])>,
    ctx: &Context,
) -> Act {
    decide_about(&Subject::person(user), standing, found, ctx)
}

/// What an issue is about: its title and the first line of its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    pub user: String,
    pub title: String,
    pub headline: String,
    /// Markdown shown after the reason when the issue is opened or a new reason is said (an
    /// exposure's evidence), never part of the reason: new calls alone add no comment.
    pub evidence: String,
}

impl Subject {
    /// A user that needs a person (CONTRACT §16).
    pub fn person(user: &str) -> Self {
        Self {
            user: user.to_owned(),
            title: title(user),
            headline: format!(
                "**{}** needs a person.",
                crate::report::escape_markdown(user)
            ),
            evidence: String::new(),
        }
    }
    /// An exposed key of a user (CONTRACT §17).
    pub fn exposure(user: &str, key: &str) -> Self {
        Self {
            user: user.to_owned(),
            title: format!("aws-key-rotator: {user} access key {key} exposed"),
            headline: format!(
                "Access key **{}** of **{}** may be compromised.",
                crate::report::escape_markdown(key),
                crate::report::escape_markdown(user)
            ),
            evidence: String::new(),
        }
    }
}

/// Where an exposure stands, for its issue (CONTRACT §17): over (healthy) once every exposed key
/// is gone and AWS's quarantine policy is detached; else its timeline, which changes (a comment)
/// as the keys go Inactive and are deleted.
pub fn exposure_standing(report: &UserReport) -> Option<(Subject, Standing)> {
    let x = report.exposure.as_ref()?;
    let name = &report.user.name;
    let first = x.sighting.keys.first()?;
    let mut subject = Subject::exposure(name, first);
    subject.evidence = format!(
        "\n{}",
        crate::report::exposure::markdown(&crate::report::exposure::view(x))
    );
    let exposed: Vec<_> = report
        .keys
        .list
        .iter()
        .filter(|k| x.sighting.keys.contains(&k.id))
        .collect();
    if exposed.is_empty() && !x.quarantined {
        return Some((subject, Standing::Healthy));
    }
    let mut t = format!(
        "seen exposed ({}) at {}: {}.",
        x.sighting.source.as_str(),
        x.sighting.at.format("%Y-%m-%d %H:%M UTC"),
        x.sighting.keys.join(", ")
    );
    for k in &exposed {
        let used = report
            .keys
            .last_used
            .iter()
            .find(|(id, _)| *id == k.id)
            .and_then(|(_, u)| {
                u.date.map(|d| {
                    format!(
                        " (last used {} through {})",
                        d.format("%Y-%m-%d %H:%M UTC"),
                        u.service
                    )
                })
            })
            .unwrap_or_default();
        t.push_str(&match k.status {
            crate::model::KeyStatus::Active => format!(
                " Key {} is Active{used}: rotate takes it out of service at once.",
                k.id
            ),
            crate::model::KeyStatus::Inactive => format!(
                " Key {} is Inactive{used}: out of service; delete removes it after delete-after-days.",
                k.id
            ),
        });
    }
    if exposed.is_empty() {
        t.push_str(" The exposed keys are deleted.");
    }
    if x.quarantined {
        t.push_str(&format!(
            " AWS's quarantine policy is still attached to {name}: after reviewing the key's activity (CloudTrail, by AccessKeyId), a person detaches it: aws iam list-attached-user-policies --user-name {name}, then aws iam detach-user-policy --user-name {name} --policy-arn arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV3 (the name it lists)."
        ));
    }
    Some((subject, Standing::Person(t)))
}

/// What to do about the issue of `subject` (`found`: the open one, with its comments' bodies).
pub fn decide_about(
    subject: &Subject,
    standing: &Standing,
    found: Option<(&Found, &[String])>,
    ctx: &Context,
) -> Act {
    let user = subject.user.as_str();
    let last = found.and_then(|(f, comments)| {
        last_reason(std::iter::once(f.body.as_str()).chain(comments.iter().map(String::as_str)))
    });
    match (standing, found) {
        (Standing::Unknown, _) | (Standing::Healthy, None) => Act::Nothing,
        (Standing::Healthy, Some((f, _))) => Act::Close {
            number: f.number,
            comment: (last.as_deref() != Some(HEALTHY)).then(|| {
                format!(
                    "{} is healthy again: `{}` found nothing that needs a person{}.\n\n{MARKER}{HEALTHY} -->\n",
                    crate::report::escape_markdown(user),
                    ctx.command,
                    ctx.run_url
                        .as_deref()
                        .filter(|u| crate::report::plain_url(u))
                        .map(|u| format!(" ({u})"))
                        .unwrap_or_default()
                )
            }),
        },
        (Standing::Person(reason), None) => Act::Open {
            title: subject.title.clone(),
            body: format!(
                "{}\n\n{}{}",
                subject.headline,
                said(user, reason, ctx),
                subject.evidence
            ),
        },
        (Standing::Person(reason), Some((f, _))) => {
            if last.as_deref() == Some(reason_key(reason).as_str()) {
                Act::Nothing
            } else {
                Act::Comment {
                    number: f.number,
                    body: format!(
                        "A new reason.\n\n{}{}",
                        said(user, reason, ctx),
                        subject.evidence
                    ),
                }
            }
        }
    }
}

/// What [`tell`] did, for the log: lines to print, and warnings.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Told {
    pub done: Vec<String>,
    pub warnings: Vec<String>,
}

/// Opens, comments on and closes the users' issues in `repo`. Stops at the first error (most
/// likely a token without `issues: write`), which becomes a warning.
pub async fn tell(issues: &impl Issues, repo: &str, reports: &[UserReport], ctx: &Context) -> Told {
    let mut told = Told::default();
    let wanted = wanted(reports);
    if wanted.is_empty() {
        return told;
    }
    let fix = format!(
        "the rotation's result is unchanged; give the job `permissions: issues: write` on {repo} (input issue-token), or set input issue-repository to none"
    );
    // Whose markers are believed (CONTRACT §12a): looked up once a run, the first time an
    // issue is there to read.
    let mut me: Option<Option<String>> = None;
    let open = match issues.open_issues(repo, LABEL).await {
        Ok(open) => open,
        Err(IssueError(e)) => {
            told.warnings
                .push(format!("could not read the issues of {repo}: {e}; {fix}"));
            return told;
        }
    };
    for (subject, standing) in wanted {
        let user = subject.user.as_str();
        let found = open.iter().find(|f| f.title == subject.title);
        let comments = match found {
            Some(f) if f.comments > 0 => match issues.comments(repo, f.number).await {
                Ok(c) => c,
                Err(IssueError(e)) => {
                    told.warnings.push(format!(
                        "could not read the comments of issue #{} in {repo}: {e}; {fix}",
                        f.number
                    ));
                    return told;
                }
            },
            _ => Vec::new(),
        };
        if found.is_some() && me.is_none() {
            match issues.identity().await {
                Ok(login) => me = Some(login),
                Err(IssueError(e)) => {
                    told.warnings.push(format!(
                        "could not tell who the issue token acts as: {e}; {fix}"
                    ));
                    return told;
                }
            }
        }
        let mine = me.clone().flatten();
        let believed = found.map(|f| believed(f, &comments, mine.as_deref()));
        let act = decide_about(
            &subject,
            &standing,
            believed.as_ref().map(|(f, c)| (f, c.as_slice())),
            ctx,
        );
        let Some(result) = carry_out(issues, repo, user, &act).await else {
            continue;
        };
        match result {
            Ok(line) => told.done.push(line),
            Err(IssueError(e)) => {
                told.warnings.push(format!(
                    "{user}: could not tell a person in {repo}: {e}; {fix}"
                ));
                return told;
            }
        }
    }
    told
}

/// Does what `act` says to user `user`'s issue in `repo`: what was done, in words, or the
/// error; `None` when there is nothing to do.
async fn carry_out(
    issues: &impl Issues,
    repo: &str,
    user: &str,
    act: &Act,
) -> Option<Result<String, IssueError>> {
    Some(match act {
        Act::Nothing => return None,
        Act::Open { title, body } => issues
            .open(repo, title, body, LABEL)
            .await
            .map(|n| format!("{user}: opened issue #{n} in {repo}")),
        Act::Comment { number, body } => issues
            .comment(repo, *number, body)
            .await
            .map(|()| format!("{user}: a new reason, commented on issue #{number} in {repo}")),
        Act::Close { number, comment } => {
            let said = match comment {
                Some(c) => issues.comment(repo, *number, c).await,
                None => Ok(()),
            };
            match said {
                Ok(()) => issues.close(repo, *number).await,
                Err(e) => Err(e),
            }
            .map(|()| format!("{user}: healthy again, closed issue #{number} in {repo}"))
        }
    })
}

/// Each user's subjects and where they stand: a user with an exposure that is not over has its
/// exposure's issue instead (CONTRACT §17); one that is over closes (when the run could tell),
/// and the user's own goes on.
fn wanted(reports: &[UserReport]) -> Vec<(Subject, Standing)> {
    reports
        .iter()
        .flat_map(|r| {
            let person = (Subject::person(&r.user.name), standing(r));
            match exposure_standing(r) {
                Some((subject, s)) if s != Standing::Healthy => vec![(subject, s)],
                // Over: its issue closes (when the run could tell), and the user's own goes on.
                Some((subject, healthy)) if person.1 != Standing::Unknown => {
                    vec![(subject, healthy), person]
                }
                _ => vec![person],
            }
        })
        .filter(|(_, s)| *s != Standing::Unknown)
        .collect()
}

#[cfg(test)]
mod tests;
