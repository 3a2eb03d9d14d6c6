//! The single-user shorthand: a manifest made from the action's inputs.

use super::names::*;
use super::*;

/// The single-user shorthand: inputs `iam-user` and `environments`, consumers in `repository`.
pub fn shorthand(iam_user: &str, repository: &str, environments: &str) -> Result<Manifest, String> {
    if !valid_iam_user_name(iam_user) {
        return Err(format!(
            "iam-user {iam_user:?} is not a valid IAM user name (1-64 characters of letters, digits and +=,.@_-)"
        ));
    }
    if !valid_repository(repository) {
        return Err(format!(
            "GITHUB_REPOSITORY {repository:?} is not of the form owner/name: the single-user shorthand writes to the current repository"
        ));
    }
    let mut consumers = vec![Consumer {
        pull_requests: true,
        scope: Scope::Repository(repository.to_owned()),
        secrets: SecretNames::default(),
    }];
    for env in environments
        .split([',', '\n'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        if dot_segment(env) {
            return Err(format!(
                "environments names {env:?}, which is not an environment name: `.` and `..` would walk up the API's paths"
            ));
        }
        let scope = Scope::Environment {
            repository: repository.to_owned(),
            environment: env.to_owned(),
        };
        if consumers.iter().any(|c| c.scope == scope) {
            return Err(format!("environments names {env:?} twice"));
        }
        consumers.push(Consumer {
            pull_requests: true,
            scope,
            secrets: SecretNames::default(),
        });
    }
    Ok(Manifest {
        source: "inputs iam-user/environments".into(),
        users: vec![UserSpec {
            on_exposure: Default::default(),
            name: iam_user.to_owned(),
            max_age_days: DEFAULT_MAX_AGE_DAYS,
            deactivate_after_hours: DEFAULT_DEACTIVATE_AFTER_HOURS,
            delete_after_days: DEFAULT_DELETE_AFTER_DAYS,
            consumers,
            verify: Vec::new(),
            external: Vec::new(),
            origin: "input iam-user".into(),
            on_role: Vec::new(),
            migrate: Migration::defaults(iam_user),
            account_role: None,
        }],
    })
}
