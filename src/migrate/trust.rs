//! Who may assume a migrated user's role (CONTRACT §13): exactly the GitHub Actions jobs that can
//! read the user's secrets today, and nobody else. Pure: the adapters resolve which repositories
//! an organization secret reaches; this turns consumers into OIDC subjects and a trust policy.

use serde_json::{Value, json};

use crate::manifest::Scope;

/// The audience every GitHub OIDC token for AWS carries.
pub const AUDIENCE: &str = "sts.amazonaws.com";

/// Which tokens a consumer's jobs present, as `sub` claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    /// The jobs that read the consumer's secrets: exact subjects, and patterns where a whole
    /// repository's jobs read them (any branch, tag, pull request or environment).
    Subjects {
        exact: Vec<String>,
        like: Vec<String>,
    },
    /// It cannot assume a role, and keeps the key: why.
    NotMovable(&'static str),
}

/// The subjects of one consumer. `org_repositories`: for an organization secret, every
/// repository (`owner/name`) its visibility or selection lets read it, as the store says.
pub fn reach(scope: &Scope, org_repositories: Option<&[String]>) -> Reach {
    let every_job_of = |repo: &str| format!("repo:{repo}:*");
    match scope {
        Scope::Environment {
            repository,
            environment,
        } => Reach::Subjects {
            exact: vec![format!("repo:{repository}:environment:{environment}")],
            like: Vec::new(),
        },
        Scope::Repository(r) => Reach::Subjects {
            exact: Vec::new(),
            like: vec![every_job_of(r)],
        },
        Scope::Organization {
            dependabot: false, ..
        } => match org_repositories {
            Some(repos) => Reach::Subjects {
                exact: Vec::new(),
                like: repos.iter().map(|r| every_job_of(r)).collect(),
            },
            None => Reach::NotMovable(
                "the repositories that may read this organization secret are not known",
            ),
        },
        other => Reach::NotMovable(
            other
                .cannot_assume_role()
                .unwrap_or("this store cannot assume a role"),
        ),
    }
}

/// `reach` without the `pull_request` subjects (`pull-requests: false`, CONTRACT §12a): each
/// whole-repository pattern `repo:O/R:*` becomes the repository's branches and tags
/// (`repo:O/R:ref:*`) and its environments (`repo:O/R:environment:*`).
pub fn without_pull_requests(reach: Reach) -> Reach {
    match reach {
        Reach::Subjects { exact, like } => Reach::Subjects {
            exact,
            like: like
                .into_iter()
                .flat_map(|p| {
                    // `repo:O/R:*` (one repository) or `repo:O/*` (every one of O).
                    let base = match p.strip_suffix(":*") {
                        Some(repo) => repo.to_owned(),
                        None if p.ends_with("/*") => p.clone(),
                        None => return vec![p],
                    };
                    vec![format!("{base}:ref:*"), format!("{base}:environment:*")]
                })
                .collect(),
        },
        other => other,
    }
}

/// The subjects of consumer `c` as GitHub says who reads it (`readers`, for an organization
/// secret): an organization secret readable by `all` is every repository of the organization,
/// today's and tomorrow's; `pull-requests: false` leaves `pull_request` jobs out.
pub fn reach_of(
    c: &crate::manifest::Consumer,
    readers: Option<&crate::ports::migrate::Readers>,
) -> Reach {
    let reach = match (&c.scope, readers) {
        (
            Scope::Organization {
                organization,
                dependabot: false,
                ..
            },
            Some(r),
        ) if r.visibility == "all" => Reach::Subjects {
            exact: Vec::new(),
            like: vec![format!("repo:{organization}/*")],
        },
        (scope, r) => reach(scope, r.map(|r| r.repositories.as_slice())),
    };
    if c.pull_requests {
        reach
    } else {
        without_pull_requests(reach)
    }
}

/// The repositories (`O/R`) whose `pull_request` jobs `reach` admits: those of its
/// whole-repository patterns that name one repository.
pub fn pull_request_repositories(reach: &Reach) -> Vec<String> {
    match reach {
        Reach::Subjects { like, .. } => like
            .iter()
            .filter_map(|p| p.strip_prefix("repo:")?.strip_suffix(":*"))
            .filter(|r| !r.contains('*'))
            .map(str::to_owned)
            .collect(),
        Reach::NotMovable(_) => Vec::new(),
    }
}

/// The role's trust policy: one statement for the exact subjects (`StringEquals`), one for the
/// patterns (`StringLike`), each requiring the audience; a statement's conditions are all
/// required, so the two kinds never share one. Subjects sorted and without repeats, so the
/// document is the same whenever the consumers are.
pub fn policy(provider_arn: &str, issuer: &str, reaches: &[Reach]) -> Value {
    let mut exact: Vec<&str> = Vec::new();
    let mut like: Vec<&str> = Vec::new();
    for r in reaches {
        if let Reach::Subjects { exact: e, like: l } = r {
            exact.extend(e.iter().map(String::as_str));
            like.extend(l.iter().map(String::as_str));
        }
    }
    for list in [&mut exact, &mut like] {
        list.sort_unstable();
        list.dedup();
    }
    // An exact subject a pattern already admits adds nothing.
    exact.retain(|s| !like.iter().any(|p| glob(p, s)));
    let aud = format!("{issuer}:aud");
    let sub = format!("{issuer}:sub");
    let statement = |sid: &str, condition: Value| {
        json!({
            "Sid": sid,
            "Effect": "Allow",
            "Principal": { "Federated": provider_arn },
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": condition,
        })
    };
    let keyed = |pairs: Vec<(&String, Value)>| {
        Value::Object(pairs.into_iter().map(|(k, v)| (k.clone(), v)).collect())
    };
    let mut statements = Vec::new();
    if !exact.is_empty() {
        // Both conditions are exact: one operator, two keys.
        let equals = keyed(vec![(&aud, json!(AUDIENCE)), (&sub, json!(exact))]);
        statements.push(statement(
            "ExactGitHubJobs",
            json!({ "StringEquals": equals }),
        ));
    }
    if !like.is_empty() {
        let equals = keyed(vec![(&aud, json!(AUDIENCE))]);
        let patterns = keyed(vec![(&sub, json!(like))]);
        statements.push(statement(
            "EveryJobOfRepositories",
            json!({ "StringEquals": equals, "StringLike": patterns }),
        ));
    }
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// IAM's `StringLike`: `*` any run of characters, `?` any one; case-sensitive.
pub fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    go(&p, &t)
}

#[cfg(test)]
mod tests;
