//! The trust policy judged independently: an evaluator of `StringEquals` and `StringLike` over
//! `aud` and `sub`, written apart from the code that makes the policy, admits every consumer's
//! own tokens and refuses everyone else's — over thousands of generated manifests.

use serde_json::Value;

use super::*;
use crate::testing::Rng;

const ISSUER: &str = "token.actions.githubusercontent.com";
const PROVIDER: &str =
    "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com";

/// IAM's `StringLike`, by dynamic programming (not the recursion the policy code uses).
fn like(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // m[j]: the pattern so far matches the first j characters of the text.
    let mut m = vec![false; t.len() + 1];
    m[0] = true;
    for c in &p {
        let mut next = vec![false; t.len() + 1];
        for j in 0..=t.len() {
            next[j] = match c {
                '*' => m[j] || (j > 0 && next[j - 1]),
                '?' => j > 0 && m[j - 1],
                c => j > 0 && m[j - 1] && t[j - 1] == *c,
            };
        }
        m = next;
    }
    m[t.len()]
}

/// Whether a token with `aud` and `sub` may assume the role, as IAM decides: some Allow
/// statement whose every condition holds, a condition holding when any of its values matches.
fn admits(policy: &Value, aud: &str, sub: &str) -> bool {
    let claim = |key: &str| match key.strip_prefix(&format!("{ISSUER}:")) {
        Some("aud") => Some(aud),
        Some("sub") => Some(sub),
        _ => None,
    };
    policy["Statement"].as_array().unwrap().iter().any(|s| {
        s["Effect"] == "Allow"
            && s["Action"] == "sts:AssumeRoleWithWebIdentity"
            && s["Principal"]["Federated"] == PROVIDER
            && s["Condition"]
                .as_object()
                .unwrap()
                .iter()
                .all(|(op, keys)| {
                    keys.as_object().unwrap().iter().all(|(key, values)| {
                        let Some(actual) = claim(key) else {
                            return false;
                        };
                        let values: Vec<&str> = match values {
                            Value::String(v) => vec![v.as_str()],
                            Value::Array(a) => a.iter().map(|v| v.as_str().unwrap()).collect(),
                            _ => panic!("a condition value is a string or a list"),
                        };
                        values.iter().any(|v| match op.as_str() {
                            "StringEquals" => *v == actual,
                            "StringLike" => like(v, actual),
                            other => panic!("unexpected operator {other}"),
                        })
                    })
                })
    })
}

/// Every token a job of `repo` can carry: on branches and tags, in pull requests, and in
/// each of `environments`.
fn tokens_of(repo: &str, environments: &[&str]) -> Vec<String> {
    let mut t = vec![
        format!("repo:{repo}:ref:refs/heads/main"),
        format!("repo:{repo}:ref:refs/tags/v1"),
        format!("repo:{repo}:pull_request"),
    ];
    t.extend(
        environments
            .iter()
            .map(|e| format!("repo:{repo}:environment:{e}")),
    );
    t
}

#[test]
fn each_kind_of_consumer_reaches_the_jobs_that_read_its_secrets() {
    let env = Scope::Environment {
        repository: "acme/web".into(),
        environment: "prod".into(),
    };
    let repo = Scope::Repository("acme/api".into());
    let org = Scope::Organization {
        organization: "acme".into(),
        dependabot: false,
        visibility: None,
        selected: vec![],
    };
    let selected = ["acme/a".to_owned(), "acme/b".to_owned()];
    let policy = policy(
        PROVIDER,
        ISSUER,
        &[
            reach(&env, None),
            reach(&repo, None),
            reach(&org, Some(&selected)),
        ],
    );
    let yes = [
        "repo:acme/web:environment:prod",
        "repo:acme/api:ref:refs/heads/main",
        "repo:acme/api:environment:staging",
        "repo:acme/a:pull_request",
        "repo:acme/b:ref:refs/heads/x",
    ];
    let no = [
        "repo:acme/web:ref:refs/heads/main", // the repository, outside the environment
        "repo:acme/web:environment:staging", // another environment
        "repo:acme/apix:ref:refs/heads/main", // a name that starts like a consumer's
        "repo:acme/c:ref:refs/heads/main",   // not selected
        "repo:evil/api:ref:refs/heads/main", // another owner (a fork)
        "repo:acme/api",                     // no context at all
    ];
    for s in yes {
        assert!(admits(&policy, AUDIENCE, s), "{s}: {policy:#}");
        assert!(
            !admits(&policy, "other-audience", s),
            "{s}: the audience is required"
        );
    }
    for s in no {
        assert!(!admits(&policy, AUDIENCE, s), "{s}: {policy:#}");
    }
    // Exact subjects are matched exactly; patterns only where a whole repository is meant.
    let text = policy.to_string();
    assert!(text.contains(r#""StringEquals""#) && text.contains(r#""StringLike""#));
    assert!(!text.contains("environment:*"));
    for s in &policy["Statement"].as_array().unwrap()[..1] {
        assert!(s["Condition"]["StringLike"].is_null(), "{s}");
    }
}

#[test]
fn dependabot_and_aws_stores_cannot_move() {
    for scope in [
        Scope::RepositoryDependabot("acme/web".into()),
        Scope::Organization {
            organization: "acme".into(),
            dependabot: true,
            visibility: None,
            selected: vec![],
        },
        Scope::ParameterStore { region: None },
        Scope::SecretsManager {
            secret: "ci/deployer".into(),
            region: None,
        },
    ] {
        assert!(
            matches!(reach(&scope, None), Reach::NotMovable(_)),
            "{scope:?}"
        );
    }
    let unknown = Scope::Organization {
        organization: "acme".into(),
        dependabot: false,
        visibility: None,
        selected: vec![],
    };
    assert!(matches!(reach(&unknown, None), Reach::NotMovable(_)));
}

/// Names that are prefixes of each other or differ in case; an environment with a `*` in it.
const OWNERS: [&str; 4] = ["acme", "acme-labs", "Acme", "ac"];
const REPOS: [&str; 5] = ["web", "web2", "we", "api", "Web"];
const ENVS: [&str; 4] = ["prod", "production", "prod*", "staging"];

#[test]
fn generated_manifests_admit_their_consumers_and_nobody_else() {
    let mut rng = Rng(0x5eed_7a57);
    for case in 0..1_500 {
        let repo_name = |rng: &mut Rng| format!("{}/{}", rng.pick(&OWNERS), rng.pick(&REPOS));
        let mut scopes = Vec::new();
        let mut orgs: Vec<Vec<String>> = Vec::new();
        for _ in 0..1 + rng.below(5) {
            scopes.push(match rng.below(3) {
                0 => Scope::Repository(repo_name(&mut rng)),
                1 => Scope::Environment {
                    repository: repo_name(&mut rng),
                    environment: rng.pick(&ENVS).to_owned(),
                },
                _ => {
                    let owner = rng.pick(&OWNERS);
                    let chosen: Vec<String> = (0..rng.below(3))
                        .map(|_| format!("{owner}/{}", rng.pick(&REPOS)))
                        .collect();
                    orgs.push(chosen);
                    Scope::Organization {
                        organization: owner.into(),
                        dependabot: false,
                        visibility: None,
                        selected: vec![],
                    }
                }
            });
        }
        let mut org_lists = orgs.iter();
        let reaches: Vec<Reach> = scopes
            .iter()
            .map(|s| match s {
                Scope::Organization { .. } => reach(s, Some(org_lists.next().unwrap())),
                _ => reach(s, None),
            })
            .collect();
        let policy = policy(PROVIDER, ISSUER, &reaches);
        // Who may read a secret today: every job of a repository consumer or a repository an
        // organization secret reaches, and the jobs of an environment consumer's environment.
        let mut whole: Vec<String> = orgs.iter().flatten().cloned().collect();
        let mut envs: Vec<(String, String)> = Vec::new();
        for s in &scopes {
            match s {
                Scope::Repository(r) => whole.push(r.clone()),
                Scope::Environment {
                    repository,
                    environment,
                } => envs.push((repository.clone(), environment.clone())),
                _ => {}
            }
        }
        let may_read = |sub: &str| {
            whole.iter().any(|r| {
                sub.strip_prefix(&format!("repo:{r}:"))
                    .is_some_and(|rest| !rest.is_empty())
            }) || envs
                .iter()
                .any(|(r, e)| sub == format!("repo:{r}:environment:{e}"))
        };
        for owner in OWNERS {
            for name in REPOS {
                for sub in tokens_of(&format!("{owner}/{name}"), &ENVS) {
                    assert_eq!(
                        admits(&policy, AUDIENCE, &sub),
                        may_read(&sub),
                        "case {case}: {sub} with consumers {scopes:?} {orgs:?}\n{policy:#}"
                    );
                    assert!(!admits(&policy, "api://other", &sub), "case {case}: {sub}");
                }
            }
        }
    }
}

/// CONTRACT §12a: over generated consumers — repositories (with and without their pull
/// requests), environments, and organization secrets readable by `all`, `private` or a
/// selection, names in mixed case — the subjects the role admits are exactly the jobs that can
/// read the secrets today (a consumer with `pull-requests: false` asks that its pull request
/// jobs be left out).
#[test]
fn generated_consumers_admit_exactly_their_readers_pull_requests_and_visibilities_included() {
    use crate::manifest::{Consumer, SecretNames};
    use crate::ports::migrate::Readers;
    let mut rng = Rng(0x7a57_2026);
    for case in 0..2_000 {
        let repo_name = |rng: &mut Rng| format!("{}/{}", rng.pick(&OWNERS), rng.pick(&REPOS));
        let mut consumers: Vec<(Consumer, Option<Readers>)> = Vec::new();
        for _ in 0..1 + rng.below(4) {
            let pull_requests = rng.below(3) != 0;
            let (scope, readers) = match rng.below(3) {
                0 => (Scope::Repository(repo_name(&mut rng)), None),
                1 => (
                    Scope::Environment {
                        repository: repo_name(&mut rng),
                        environment: rng.pick(&ENVS).to_owned(),
                    },
                    None,
                ),
                _ => {
                    let owner = rng.pick(&OWNERS);
                    let visibility = rng.pick(&["all", "private", "selected"]);
                    let repositories: Vec<String> = match visibility {
                        // GitHub lists every repository it reaches today; `all` also
                        // tomorrow's, so the role admits the whole organization.
                        "all" => REPOS.iter().map(|r| format!("{owner}/{r}")).collect(),
                        _ => (0..rng.below(3))
                            .map(|_| format!("{owner}/{}", rng.pick(&REPOS)))
                            .collect(),
                    };
                    (
                        Scope::Organization {
                            organization: owner.into(),
                            dependabot: false,
                            visibility: None,
                            selected: vec![],
                        },
                        Some(Readers {
                            visibility: visibility.into(),
                            repositories,
                            selected_ids: vec![],
                        }),
                    )
                }
            };
            // An environment consumer has no pull request setting of its own.
            let pull_requests = pull_requests || matches!(scope, Scope::Environment { .. });
            consumers.push((
                Consumer {
                    scope,
                    secrets: SecretNames::default(),
                    pull_requests,
                },
                readers,
            ));
        }
        let reaches: Vec<Reach> = consumers
            .iter()
            .map(|(c, r)| reach_of(c, r.as_ref()))
            .collect();
        let policy = policy(PROVIDER, ISSUER, &reaches);
        // The oracle: which jobs read a secret today, consumer by consumer.
        let reads = |sub: &str| {
            consumers.iter().any(|(c, readers)| {
                let whole = |r: &str| {
                    sub.strip_prefix(&format!("repo:{r}:"))
                        .is_some_and(|rest| !rest.is_empty())
                        && (c.pull_requests || !sub.ends_with(":pull_request"))
                };
                match &c.scope {
                    Scope::Repository(r) => whole(r),
                    Scope::Environment {
                        repository,
                        environment,
                    } => sub == format!("repo:{repository}:environment:{environment}"),
                    _ => readers
                        .as_ref()
                        .unwrap()
                        .repositories
                        .iter()
                        .any(|r| whole(r)),
                }
            })
        };
        for owner in OWNERS {
            for name in REPOS {
                for sub in tokens_of(&format!("{owner}/{name}"), &ENVS) {
                    assert_eq!(
                        admits(&policy, AUDIENCE, &sub),
                        reads(&sub),
                        "case {case}: {sub} with consumers {consumers:?}\n{policy:#}"
                    );
                }
            }
        }
    }
}
