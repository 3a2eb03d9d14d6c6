//! Bad input exits 2, says what to fix, and changes nothing in IAM or GitHub.

use crate::support::*;

const USER: &str = "ci-deployer";

const MANIFEST: &str = "\
version: 1
users:
  - name: ci-deployer
    consumers:
      - repository: acme/web
      - repository: acme/web
        environment: production
";

/// A due user with one key held by both consumers; returns the key.
fn due_user(env: &TestEnv) -> Key {
    env.rotating_user(USER);
    let key = env.aged_key(USER, 120);
    env.github.add_repo("acme/web");
    env.github.add_environment("acme/web", "production");
    env.seed(
        &[repo("acme/web"), environment("acme/web", "production")],
        &key,
        120,
    );
    key
}

/// Runs `rotate` as the action and checks: exit 2, the message, nothing changed.
fn refused_as_invalid(env: &TestEnv, creds: &Key, inputs: &[(&str, &str)], needle: &str) -> Run {
    refused_as_invalid_with(env, creds, inputs, &[], needle)
}

/// [`refused_as_invalid`] with more environment variables.
fn refused_as_invalid_with(
    env: &TestEnv,
    creds: &Key,
    inputs: &[(&str, &str)],
    vars: &[(&str, &str)],
    needle: &str,
) -> Run {
    let before = env.world(USER);
    let mut all: Vec<(String, String)> = vec![
        ("GITHUB_ACTIONS".into(), "true".into()),
        (
            "INPUT_GITHUB-TOKEN".into(),
            crate::support::fake_github::TOKEN.into(),
        ),
    ];
    for (k, v) in inputs {
        all.push((format!("INPUT_{}", k.to_ascii_uppercase()), (*v).into()));
    }
    for (k, v) in vars {
        all.push(((*k).into(), (*v).into()));
    }
    let run = env.exec(creds, &[], all);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains(needle),
        "wanted {needle:?} in:\n{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("::error::"),
        "an error annotation:\n{}",
        run.stdout
    );
    assert_eq!(env.world(USER), before, "IAM and every secret unchanged");
    assert_eq!(env.github.count("PUT", "/"), 0);
    run
}

/// Whose credentials a case runs with.
#[derive(Clone, Copy)]
enum Creds {
    /// The due user's own key.
    Own,
    /// None at all.
    Missing,
    /// The user's key id with a wrong secret.
    WrongSecret,
}

/// One way to get the input wrong: the manifest (`None`: no file), the inputs, the credentials,
/// a fault GitHub answers with, and what the refusal must say.
struct Case {
    manifest: Option<String>,
    inputs: &'static [(&'static str, &'static str)],
    /// Environment variables beside the inputs.
    vars: &'static [(&'static str, &'static str)],
    creds: Creds,
    fault: Option<Fault>,
    says: &'static str,
}

fn case(manifest: &str, says: &'static str) -> Case {
    Case {
        manifest: Some(manifest.to_owned()),
        inputs: &[],
        vars: &[],
        creds: Creds::Own,
        fault: None,
        says,
    }
}

fn cases() -> Vec<Case> {
    vec![
        case(
            "version: 1\nusers: [\n",
            ".github/aws-key-rotation.yml:2:8: unclosed bracket",
        ),
        case(
            &MANIFEST.replace("    consumers:", "    max_age_days: 3\n    consumers:"),
            ".github/aws-key-rotation.yml:4:5: unknown field `max_age_days`, expected one of name, max-age-days",
        ),
        case(
            &MANIFEST.replace("version: 1\n", ""),
            ".github/aws-key-rotation.yml:1:1: missing field `version` (add `version: 1` at the top)",
        ),
        case(
            &MANIFEST.replace("name: ci-deployer", "name: ci-deployr"),
            ".github/aws-key-rotation.yml:3:5: IAM user \"ci-deployr\" does not exist",
        ),
        case(
            &format!("{MANIFEST}      - repository: acme/gone\n"),
            "acme/gone (repository secrets): GitHub answered 404: the repository or environment does not exist",
        ),
        case(
            &format!("{MANIFEST}      - repository: acme/web\n        environment: staging\n"),
            "acme/web environment \"staging\": GitHub answered 404",
        ),
        Case {
            fault: Some(Fault::new(axum::http::Method::GET, "/public-key", 403)),
            ..case(
                MANIFEST,
                "GitHub answered 403 (injected fault): the token cannot read secrets here. The workflow's own GITHUB_TOKEN can never write secrets",
            )
        },
        Case {
            inputs: &[("github-token", "")],
            ..case(
                MANIFEST,
                "GitHub answered 401 (Requires authentication): no token was given. Give it as input github-token",
            )
        },
        Case {
            creds: Creds::Missing,
            ..case(MANIFEST, "no AWS credentials")
        },
        Case {
            creds: Creds::WrongSecret,
            ..case(MANIFEST, "AWS answered 403 to iam:ListAccessKeys")
        },
        Case {
            manifest: None,
            ..case("", "no manifest at .github/aws-key-rotation.yml")
        },
        Case {
            inputs: &[("config", "keys/rotation.yml")],
            ..case(MANIFEST, "cannot read the manifest keys/rotation.yml")
        },
        Case {
            inputs: &[("user", "someone")],
            ..case(
                MANIFEST,
                "user \"someone\" is not in .github/aws-key-rotation.yml (its users: ci-deployer)",
            )
        },
        Case {
            inputs: &[("force", "yes")],
            ..case(MANIFEST, "input force must be true or false, not \"yes\"")
        },
        // CONTRACT §12: every number in its range; nothing wraps, saturates or panics.
        Case {
            inputs: &[("deactivate-after-hours", "18446744073709551615")],
            ..case(
                MANIFEST,
                "input deactivate-after-hours must be a whole number of hours from 0 to 8760, not 18446744073709551615",
            )
        },
        Case {
            inputs: &[("deactivate-after-hours", "9223372036854775808")],
            ..case(
                MANIFEST,
                "input deactivate-after-hours must be a whole number of hours from 0 to 8760",
            )
        },
        Case {
            inputs: &[("verify-timeout-minutes", "1000000000000000")],
            ..case(
                MANIFEST,
                "input verify-timeout-minutes must be a whole number of minutes from 1 to 360",
            )
        },
        Case {
            inputs: &[("delete-after-days", "-1")],
            ..case(
                MANIFEST,
                "input delete-after-days must be a whole number of days from 0 to 365, not \"-1\"",
            )
        },
        Case {
            inputs: &[("poll-interval-seconds", "0")],
            ..case(
                MANIFEST,
                "input poll-interval-seconds must be a whole number of seconds from 1 to 3600, not 0",
            )
        },
        Case {
            inputs: &[("straggler-window-minutes", "1.5")],
            ..case(
                MANIFEST,
                "input straggler-window-minutes must be a whole number of minutes from 0 to 10080",
            )
        },
        case(
            &MANIFEST.replace(
                "    consumers:",
                "    deactivate-after-hours: 18446744073709551615\n    consumers:",
            ),
            ".github/aws-key-rotation.yml:3:5: deactivate-after-hours must be a whole number of hours from 0 to 8760",
        ),
        case(
            &MANIFEST.replace("version: 1\n", "version: 1\ndefaults:\n  max-age-days: 0\n"),
            ".github/aws-key-rotation.yml:3:3: defaults.max-age-days must be a whole number of days from 1 to 3650, not 0",
        ),
        // Names that would walk up the API's paths.
        case(
            &MANIFEST.replace(
                "      - repository: acme/web\n        environment",
                "      - repository: acme/..\n        environment",
            ),
            "repository \"acme/..\" is not of the form owner/name",
        ),
        case(
            &MANIFEST.replace("environment: production", "environment: .."),
            "environment \"..\" is not an environment name",
        ),
        // CONTRACT §12: the token never travels in clear.
        Case {
            vars: &[("GITHUB_API_URL", "http://github.example.com/api/v3")],
            ..case(
                MANIFEST,
                "GITHUB_API_URL \"http://github.example.com/api/v3\" is plain http",
            )
        },
        // CONTRACT §12a: one TLS rule, on the parsed URI (the scheme in any case).
        Case {
            vars: &[("GITHUB_API_URL", "HTTP://github.example.com/api/v3")],
            ..case(
                MANIFEST,
                "GITHUB_API_URL \"HTTP://github.example.com/api/v3\" is plain http",
            )
        },
    ]
}

/// Every case, one after another against one world: each exits 2 with its message, and
/// leaves IAM and every secret as they were.
#[test]
fn every_bad_input_is_refused_and_changes_nothing() {
    let env = TestEnv::new();
    let key = due_user(&env);
    for case in cases() {
        env.github.clear_faults();
        match &case.manifest {
            Some(yaml) => env.write_manifest(yaml),
            None => env.remove_manifest(),
        }
        if let Some(fault) = case.fault {
            env.github.add_fault(fault);
        }
        let creds = match case.creds {
            Creds::Own => key.clone(),
            Creds::Missing => Key {
                id: String::new(),
                secret: String::new(),
            },
            Creds::WrongSecret => Key {
                id: key.id.clone(),
                secret: "x".repeat(40),
            },
        };
        refused_as_invalid_with(&env, &creds, case.inputs, case.vars, case.says);
    }
}

#[test]
fn an_old_access_key_id_that_is_not_the_users() {
    let env = TestEnv::new();
    let key = due_user(&env);
    env.write_manifest(MANIFEST);
    let newer = env.create_key(USER);
    let then = chrono::Utc::now();
    for scope in [repo("acme/web"), environment("acme/web", "production")] {
        env.github
            .set_secret(&scope, "AWS_ACCESS_KEY_ID", &newer.id, then);
        env.github
            .set_secret(&scope, "AWS_SECRET_ACCESS_KEY", &newer.secret, then);
    }
    let run = refused_as_invalid(
        &env,
        &newer,
        &[
            ("command", "deactivate"),
            ("old-access-key-id", "AKIANOTTHEUSERS00000"),
        ],
        "old-access-key-id AKIANOTTHEUSERS00000 is not a key of user ci-deployer",
    );
    assert!(run.stderr.contains(&key.id));
}

#[test]
fn bad_input_on_one_user_stops_before_any_user_changes() {
    let env = TestEnv::new();
    let key = due_user(&env);
    env.user("other", &["iam:ListAccessKeys"]);
    env.aged_key("other", 200);
    env.write_manifest(&format!(
        "version: 1\nusers:\n  - name: other\n    consumers:\n      - repository: acme/web\n        secrets: {{ access-key-id: OTHER_ID, secret-access-key: OTHER_SECRET }}\n{}",
        MANIFEST.trim_start_matches("version: 1\nusers:\n")
    ).replace("      - repository: acme/web\n        environment: production\n", "      - repository: acme/web\n        environment: missing\n"));
    let before = env.keys("other");
    let admin = env.admin.clone();
    refused_as_invalid(
        &env,
        &admin,
        &[],
        "acme/web environment \"missing\": GitHub answered 404",
    );
    assert_eq!(
        env.keys("other"),
        before,
        "the first user was not rotated either"
    );
    let _ = key;
}
