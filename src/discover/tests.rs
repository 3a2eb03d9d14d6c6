use super::*;
use crate::manifest::{Consumer, SecretNames, VerifyWorkflow};

fn user(consumers: Vec<Scope>) -> UserSpec {
    UserSpec {
        verify: vec![VerifyWorkflow {
            repository: "tools/checks".into(),
            workflow: "v.yml".into(),
            git_ref: None,
        }],
        ..crate::testing::user_of(
            consumers
                .into_iter()
                .map(|scope| Consumer {
                    pull_requests: true,
                    scope,
                    secrets: SecretNames::default(),
                })
                .collect(),
        )
    }
}

fn names(n: &[&str]) -> BTreeSet<String> {
    n.iter().map(|s| s.to_string()).collect()
}

#[test]
fn unlisted_places_with_a_users_names_are_found_and_nothing_else() {
    let org = |dependabot| Scope::Organization {
        organization: "acme".into(),
        dependabot,
        visibility: None,
        selected: Vec::new(),
    };
    let u = user(vec![
        Scope::Repository("acme/web".into()),
        Scope::Organization {
            organization: "ACME".into(),
            dependabot: false,
            visibility: Some(crate::manifest::Visibility::All),
            selected: Vec::new(),
        },
    ]);
    assert_eq!(owners(std::slice::from_ref(&u)), ["acme", "tools"]);
    let inventory = Inventory {
        stores: [
            (
                Scope::Repository("acme/web".into()),
                names(&["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]),
            ),
            (
                Scope::Repository("acme/api".into()),
                names(&["aws_access_key_id", "NPM_TOKEN"]),
            ),
            (
                Scope::Environment {
                    repository: "acme/web".into(),
                    environment: "staging".into(),
                },
                names(&["AWS_SECRET_ACCESS_KEY"]),
            ),
            (Scope::Repository("acme/docs".into()), names(&["NPM_TOKEN"])),
            (org(false), names(&["AWS_ACCESS_KEY_ID"])),
            (org(true), names(&["AWS_ACCESS_KEY_ID"])),
        ]
        .into_iter()
        .collect(),
        ..Inventory::default()
    };
    let found: Vec<(String, String)> = findings(&[u], &inventory)
        .into_iter()
        .map(|f| (f.store, f.secret))
        .collect();
    assert_eq!(
        found,
        [
            (
                "acme/api (repository secrets)".to_owned(),
                "aws_access_key_id".to_owned()
            ),
            (
                "acme/web environment \"staging\"".to_owned(),
                "AWS_SECRET_ACCESS_KEY".to_owned()
            ),
            (
                "organization acme (Dependabot secrets)".to_owned(),
                "AWS_ACCESS_KEY_ID".to_owned()
            ),
        ]
    );
}

#[test]
fn snippets_paste_into_the_manifest() {
    assert_eq!(
        snippet(&Scope::Environment {
            repository: "acme/web".into(),
            environment: "staging".into()
        }),
        "- repository: acme/web\n  environment: staging"
    );
    assert_eq!(
        snippet(&Scope::RepositoryDependabot("acme/web".into())),
        "- repository: acme/web\n  app: dependabot"
    );
}
