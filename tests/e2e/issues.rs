//! End-to-end: a person told through an issue (CONTRACT §16), against the fake GitHub's issues.

use crate::support::fixtures::{MANIFEST, USER, add_consumer_stores};
use crate::support::*;

const TITLE: &str = "aws-key-rotator: ci-deployer needs a person";

/// A user whose only key is Inactive: every run of the life cycle says it needs a person.
fn inactive_user(env: &TestEnv) -> Key {
    env.rotating_user(USER);
    let key = env.aged_key(USER, 100);
    add_consumer_stores(env);
    env.write_manifest(MANIFEST);
    env.deactivate_by_hand(USER, &key.id);
    key
}

/// The action in a workflow run of acme/web (run 4242), with these inputs.
fn in_run(env: &TestEnv, inputs: &[(&str, &str)]) -> Run {
    let mut vars: Vec<(String, String)> = vec![
        ("GITHUB_ACTIONS".into(), "true".into()),
        ("GITHUB_SERVER_URL".into(), "https://github.example".into()),
        ("GITHUB_RUN_ID".into(), "4242".into()),
        ("GITHUB_RUN_ATTEMPT".into(), "1".into()),
        ("INPUT_GITHUB-TOKEN".into(), fake_github::TOKEN.into()),
        ("INPUT_ISSUE-TOKEN".into(), fake_github::TOKEN.into()),
    ];
    for (k, v) in inputs {
        vars.retain(|(name, _)| *name != format!("INPUT_{}", k.to_ascii_uppercase()));
        vars.push((format!("INPUT_{}", k.to_ascii_uppercase()), (*v).into()));
    }
    let admin = env.admin.clone();
    env.exec(&admin, &[], vars)
}

/// A person deletes key `id` of the user.
fn delete_key(env: &TestEnv, id: &str) {
    runtime().block_on(async {
        env.iam()
            .delete_access_key()
            .user_name(USER)
            .access_key_id(id)
            .send()
            .await
            .unwrap();
    });
}

fn open_issues(env: &TestEnv) -> Vec<fake_github::FakeIssue> {
    env.github
        .issues("acme/web")
        .into_iter()
        .filter(|i| i.state == "open")
        .collect()
}

#[test]
fn a_user_that_needs_a_person_gets_one_issue_and_the_same_reason_adds_nothing() {
    let env = TestEnv::new();
    inactive_user(&env);
    let run = in_run(&env, &[("command", "deactivate")]);
    assert_eq!(run.code, 3, "{}", run.all());
    let issues = env.github.issues("acme/web");
    assert_eq!(issues.len(), 1, "{issues:?}");
    let issue = &issues[0];
    assert_eq!(issue.title, TITLE);
    assert_eq!(issue.labels, vec!["aws-key-rotator".to_owned()]);
    assert_eq!(issue.state, "open");
    assert!(
        issue.body.contains("only an Inactive key"),
        "{}",
        issue.body
    );
    assert!(
        issue.body.contains(
            "aws-key-rotator status --config .github/aws-key-rotation.yml --user ci-deployer"
        ),
        "{}",
        issue.body
    );
    assert!(
        issue
            .body
            .contains("https://github.example/acme/web/actions/runs/4242"),
        "{}",
        issue.body
    );
    assert!(
        run.stdout.contains("opened issue #1 in acme/web"),
        "{}",
        run.all()
    );

    // The next day's run, the same reason: nothing more, and the same exit code.
    let again = in_run(&env, &[("command", "deactivate")]);
    assert_eq!(again.code, 3, "{}", again.all());
    let issues = env.github.issues("acme/web");
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert!(issues[0].comments.is_empty(), "{:?}", issues[0].comments);
    assert_eq!(env.github.count("POST", "/issues"), 1);
}

#[test]
fn a_new_reason_is_one_comment_and_a_healthy_user_closes_the_issue() {
    let env = TestEnv::new();
    let inactive = inactive_user(&env);
    assert_eq!(in_run(&env, &[("command", "deactivate")]).code, 3);
    // A second key made by hand: Inactive + Active with no journal is a conflict.
    let fresh = env.create_key(USER);
    let run = in_run(&env, &[("command", "deactivate")]);
    assert_eq!(run.code, 3, "{}", run.all());
    let issues = env.github.issues("acme/web");
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0].comments.len(), 1, "{:?}", issues[0].comments);
    assert!(
        issues[0].comments[0].contains("no command handles"),
        "{}",
        issues[0].comments[0]
    );
    assert_eq!(in_run(&env, &[("command", "deactivate")]).code, 3);
    assert_eq!(env.github.issues("acme/web")[0].comments.len(), 1);

    // A person removes the Inactive key: one young Active key is healthy.
    delete_key(&env, &inactive.id);
    let healthy = in_run(&env, &[("command", "deactivate")]);
    assert_eq!(healthy.code, 0, "{}", healthy.all());
    let issues = env.github.issues("acme/web");
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0].state, "closed");
    assert_eq!(issues[0].comments.len(), 2, "{:?}", issues[0].comments);
    assert!(
        issues[0].comments[1].contains("healthy again"),
        "{}",
        issues[0].comments[1]
    );
    assert!(open_issues(&env).is_empty());
    assert_eq!(env.keys(USER), vec![(fresh.id.clone(), "Active".into())]);

    // Needing a person again opens a new issue (the closed one stays closed).
    env.deactivate_by_hand(USER, &fresh.id);
    assert_eq!(in_run(&env, &[("command", "deactivate")]).code, 3);
    let issues = env.github.issues("acme/web");
    assert_eq!(issues.len(), 2, "{issues:?}");
    assert_eq!(open_issues(&env).len(), 1);
}

#[test]
fn a_token_refused_on_issues_warns_and_the_result_is_unchanged() {
    let env = TestEnv::new();
    let key = inactive_user(&env);
    let run = in_run(
        &env,
        &[
            ("command", "deactivate"),
            ("issue-token", fake_github::READ_ONLY_TOKEN),
        ],
    );
    assert_eq!(run.code, 3, "{}", run.all());
    assert_eq!(run.output("exit-code").as_deref(), Some("3"));
    assert!(env.github.issues("acme/web").is_empty());
    assert!(run.all().contains("::warning::"), "{}", run.all());
    assert!(run.all().contains("issues: write"), "{}", run.all());
    assert_eq!(env.keys(USER), vec![(key.id.clone(), "Inactive".into())]);
}

#[test]
fn a_rotation_that_works_stays_exit_0_when_its_issue_repository_cannot_be_read() {
    let env = TestEnv::new();
    env.rotating_user(USER);
    env.aged_key(USER, 100);
    add_consumer_stores(&env);
    env.write_manifest(MANIFEST);
    let run = in_run(
        &env,
        &[("command", "rotate"), ("issue-repository", "acme/unknown")],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(run.output("rotated").as_deref(), Some("true"));
    assert!(
        run.all()
            .contains("could not read the issues of acme/unknown"),
        "{}",
        run.all()
    );
}

#[test]
fn dry_run_status_and_none_open_nothing() {
    let env = TestEnv::new();
    inactive_user(&env);
    for inputs in [
        vec![("command", "rotate"), ("dry-run", "true")],
        vec![("command", "status")],
        vec![("command", "deactivate"), ("issue-repository", "none")],
    ] {
        let run = in_run(&env, &inputs);
        assert_eq!(run.code, 3, "{inputs:?}: {}", run.all());
        assert!(env.github.issues("acme/web").is_empty(), "{inputs:?}");
    }
    assert_eq!(env.github.count("GET", "/issues"), 0);
}

#[test]
fn an_issue_repository_that_is_not_owner_name_is_refused_before_anything_changes() {
    let env = TestEnv::new();
    inactive_user(&env);
    let before = env.world(USER);
    let run = in_run(&env, &[("command", "rotate"), ("issue-repository", "acme")]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("input issue-repository"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("owner/name"), "{}", run.stderr);
    assert_eq!(env.world(USER), before);
    assert!(env.github.issues("acme/web").is_empty());
}

/// CONTRACT §12a: an issue marker is believed only from the tool's own identity (the token's
/// user, looked up once a run). Anyone who can comment could otherwise silence the next
/// reason by posting its marker first, or skip the "healthy again" comment with that marker.
#[test]
fn a_strangers_marker_neither_silences_a_new_reason_nor_the_healthy_comment() {
    use aws_key_rotator::notify::reason_key;
    let env = TestEnv::new();
    let inactive = inactive_user(&env);
    assert_eq!(in_run(&env, &[("command", "deactivate")]).code, 3);
    let next = format!("user {USER} has keys in a combination no command handles");
    env.github.comment_as(
        "acme/web",
        1,
        "mallory",
        &format!(
            "nothing to see @acme/security <!-- aws-key-rotator:reason={} -->",
            reason_key(&next)
        ),
    );
    env.create_key(USER);
    let run = in_run(&env, &[("command", "deactivate")]);
    assert_eq!(run.code, 3, "{}", run.all());
    let issue = &env.github.issues("acme/web")[0];
    assert_eq!(issue.comments.len(), 2, "{:?}", issue.comments);
    assert_eq!(issue.comment_authors[1], fake_github::TOKEN_LOGIN);
    assert!(
        issue.comments[1].contains("no command handles"),
        "{}",
        issue.comments[1]
    );

    env.github.comment_as(
        "acme/web",
        1,
        "mallory",
        "<!-- aws-key-rotator:reason=* -->",
    );
    delete_key(&env, &inactive.id);
    let healthy = in_run(&env, &[("command", "deactivate")]);
    assert_eq!(healthy.code, 0, "{}", healthy.all());
    let issue = &env.github.issues("acme/web")[0];
    assert_eq!(issue.state, "closed");
    let last = issue.comments.last().unwrap();
    assert!(last.contains("healthy again"), "{last}");
    assert_eq!(
        issue.comment_authors.last().unwrap(),
        fake_github::TOKEN_LOGIN
    );
}
