//! An exposed key (CONTRACT §17): detected (AWS's quarantine policy, a person's
//! `compromised-key-id`), recorded, and taken out of service within one run — a new key proven
//! and written everywhere, then the exposed one Inactive with no grace period — against moto in
//! auth mode, which carries AWS's managed policies and enforces the quarantine.

use crate::support::fake_cloudtrail::{self, Recorded};
use crate::support::fixtures::{MANIFEST, USER, add_consumer_stores, consumers, seed_consumers};
use crate::support::*;
use aws_key_rotator::rotation::journal::{EXPOSURE_TAG, Exposure, ExposureSource};

const QUARANTINE: &str = "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV3";

/// The user, its three consumers, and a key ten days old (far from due) in all of them.
fn setup(env: &TestEnv) -> Key {
    env.rotating_user(USER);
    add_consumer_stores(env);
    env.write_manifest(MANIFEST);
    let key = env.aged_key(USER, 10);
    seed_consumers(env, &key, 10);
    key
}

fn quarantine(env: &TestEnv) {
    runtime().block_on(async {
        env.iam()
            .attach_user_policy()
            .user_name(USER)
            .policy_arn(QUARANTINE)
            .send()
            .await
            .unwrap();
    });
}

/// Every consumer holds `new`, whole, and it works; `exposed` is Inactive and refused.
fn taken_out_of_service(env: &TestEnv, exposed: &Key) -> Key {
    let new = env.held_default(&repo("acme/web")).expect("a key");
    assert_ne!(new.id, exposed.id);
    for (scope, id, secret) in consumers() {
        let k = env.held(&scope, id, secret).unwrap();
        assert_eq!(
            (k.id.as_str(), k.secret.as_str()),
            (new.id.as_str(), new.secret.as_str()),
            "{scope:?}"
        );
    }
    assert!(env.sts_accepts(&new));
    assert_eq!(
        env.keys(USER),
        vec![
            (exposed.id.clone(), "Inactive".to_owned()),
            (new.id.clone(), "Active".to_owned())
        ]
    );
    assert!(!env.sts_accepts(exposed));
    new
}

#[test]
fn a_quarantined_users_key_is_rotated_and_deactivated_in_one_scheduled_run() {
    let env = TestEnv::with_aws_managed_policies();
    let old = setup(&env);
    quarantine(&env);
    let admin = env.admin.clone();
    // `status` sees it (reads only), loud.
    let status = env.changes_nothing(USER, 3, || env.action(&admin, &[("command", "status")]));
    assert_eq!(
        status.output("state").as_deref(),
        Some("exposed"),
        "{}",
        status.all()
    );
    assert!(status.all().contains("quarantine"), "{}", status.all());
    // Due at once, so the reusable workflow's rotate job runs; not left to a person, since
    // rotate answers it (the workflow's attention job stays quiet).
    assert_eq!(
        status.output("users-due").as_deref(),
        Some("[\"ci-deployer\"]")
    );
    assert_eq!(status.output("needs-person").as_deref(), Some("[]"));
    // The daily rotate, no force, a key 80 days from due: rotated and retired at once.
    let run = env.action(&admin, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    taken_out_of_service(&env, &old);
    assert!(
        run.all()
            .contains(&format!("the exposed key {} is Inactive", old.id)),
        "{}",
        run.all()
    );
    let recorded = Exposure::parse(&env.tags(USER)[EXPOSURE_TAG]).unwrap();
    assert_eq!(
        (recorded.keys, recorded.source),
        (vec![old.id.clone()], ExposureSource::Quarantine)
    );
    // Quiet afterwards: the exposed key is Inactive (the quarantine policy stays: a person's).
    let status = env.action(&admin, &[("command", "status")]);
    assert_ne!(
        status.output("state").as_deref(),
        Some("exposed"),
        "{}",
        status.all()
    );
    env.assert_no_leaks();
}

#[test]
fn a_person_names_a_compromised_key_and_a_straggler_does_not_hold_its_retirement() {
    let env = TestEnv::with_aws_managed_policies();
    let old = setup(&env);
    let admin = env.admin.clone();
    // Whoever found it is using it: evidence, not a reason to wait.
    env.record_use(&old.id, 1, "s3");
    let run = env.action(&admin, &[("compromised-key-id", &old.id)]);
    assert_eq!(run.code, 0, "{}", run.all());
    taken_out_of_service(&env, &old);
    let recorded = Exposure::parse(&env.tags(USER)[EXPOSURE_TAG]).unwrap();
    assert_eq!(recorded.source, ExposureSource::Manual);
}

#[test]
fn a_compromised_key_id_that_is_not_a_managed_users_key_changes_nothing() {
    let env = TestEnv::with_aws_managed_policies();
    setup(&env);
    let admin = env.admin.clone();
    let stranger = env.create_key(&admin_name(&env));
    for (id, needle) in [
        (
            stranger.id.as_str(),
            "is not a key of any user of the manifest",
        ),
        ("AKIA-not-an-id", "is not an access key id"),
    ] {
        let run = env.changes_nothing(USER, 2, || {
            env.action(&admin, &[("compromised-key-id", id)])
        });
        assert!(run.all().contains(needle), "{}", run.all());
    }
}

/// The admin's IAM user name (the identity the tests act as).
fn admin_name(env: &TestEnv) -> String {
    runtime().block_on(async {
        let me = env.iam().get_user().send().await.unwrap();
        me.user().unwrap().user_name().to_owned()
    })
}

#[test]
fn self_rotation_under_quarantine_refuses_and_names_the_fix() {
    let env = TestEnv::with_aws_managed_policies();
    let old = setup(&env);
    quarantine(&env);
    let run = env.changes_nothing(USER, 3, || env.action(&old, &[]));
    assert!(
        run.all().contains("quarantine") && run.all().contains("another identity"),
        "{}",
        run.all()
    );
}

/// CONTRACT §17: an exposure has its own issue, titled for the key, whose comments follow the
/// timeline (seen, then Inactive, then deleted) and which names the command that detaches the
/// quarantine policy; it closes once the key is gone and the policy detached.
#[test]
fn an_exposure_keeps_one_issue_with_its_timeline_until_the_key_is_gone_and_the_policy_detached() {
    let env = TestEnv::with_aws_managed_policies();
    let old = setup(&env);
    quarantine(&env);
    let admin = env.admin.clone();
    let tell = [("issue-token", fake_github::TOKEN)];
    let title = format!("aws-key-rotator: {USER} access key {} exposed", old.id);
    let run = env.action(&admin, &tell);
    assert_eq!(run.code, 0, "{}", run.all());
    let issues = env.github.issues("acme/web");
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0].title, title);
    assert!(issues[0].body.contains("is Inactive"), "{}", issues[0].body);
    assert!(
        issues[0]
            .body
            .contains("aws iam detach-user-policy --user-name ci-deployer"),
        "{}",
        issues[0].body
    );
    // The key deleted (its grace over): one comment; the policy still attached keeps it open.
    let run = env.action(
        &admin,
        &[("command", "delete"), ("delete-after-days", "0"), tell[0]],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(env.keys(USER).iter().all(|(id, _)| *id != old.id));
    let run = env.action(&admin, &[("command", "deactivate"), tell[0]]);
    assert_eq!(run.code, 0, "{}", run.all());
    let issue = &env.github.issues("acme/web")[0];
    assert_eq!(issue.state, "open");
    assert!(
        issue
            .comments
            .iter()
            .any(|c| c.contains("exposed keys are deleted")),
        "{:?}",
        issue.comments
    );
    // A person detaches the policy: the next run closes the issue.
    runtime().block_on(async {
        env.iam()
            .detach_user_policy()
            .user_name(USER)
            .policy_arn(QUARANTINE)
            .send()
            .await
            .unwrap();
    });
    let run = env.action(&admin, &[("command", "deactivate"), tell[0]]);
    assert_eq!(run.code, 0, "{}", run.all());
    let issue = &env.github.issues("acme/web")[0];
    assert_eq!(issue.state, "closed", "{:?}", issue.comments);
    assert!(
        !env.tags(USER).contains_key(EXPOSURE_TAG),
        "an exposure that is over is history: a later quarantine is a new sighting"
    );
    assert_eq!(env.github.issues("acme/web").len(), 1, "no other issue");
}

/// Two users, each with its repository: `aged`, its key 100 days old (due), and `exposed`, its
/// key 5 days old; no grace periods.
fn aged_and_exposed(env: &TestEnv) -> (Key, Key) {
    for name in ["aged", "exposed"] {
        env.rotating_user(name);
    }
    env.github.add_repo("acme/aged");
    env.github.add_repo("acme/exposed");
    let aged = env.aged_key("aged", 100);
    let exposed = env.aged_key("exposed", 5);
    env.seed(&[repo("acme/aged")], &aged, 100);
    env.seed(&[repo("acme/exposed")], &exposed, 5);
    env.write_manifest(
        "version: 1
defaults: { deactivate-after-hours: 0, delete-after-days: 0 }
users:
  - name: aged
    consumers: [{repository: acme/aged}]
  - name: exposed
    consumers: [{repository: acme/exposed}]
",
    );
    (aged, exposed)
}

/// CONTRACT §17: exposed users go first. The hour's write budget fits one user: the exposed one
/// (listed second, its key young) rotates; the one merely due by age waits for the next run.
#[test]
fn an_exposed_user_goes_first_when_the_hours_budget_fits_one() {
    let env = TestEnv::new();
    let (_, exposed) = aged_and_exposed(&env);
    let run = env.exec(
        &env.admin.clone(),
        &["rotate", "--json", "--compromised-key-id", &exposed.id],
        vec![
            ("GITHUB_TOKEN".into(), fake_github::TOKEN.into()),
            ("AWS_KEY_ROTATOR_GITHUB_WRITES_PER_HOUR".into(), "2".into()),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["users"][0]["outcome"], "deferred", "{v}");
    assert_eq!(v["users"][1]["outcome"], "rotated", "{v}");
    assert_eq!(env.keys("aged").len(), 1, "not started");
    assert_eq!(
        env.keys("exposed"),
        vec![
            (exposed.id.clone(), "Inactive".to_owned()),
            (
                env.held_default(&repo("acme/exposed")).unwrap().id,
                "Active".to_owned()
            )
        ]
    );
}

/// The binary as the action, in workflow run 4242 of acme/web.
fn in_run(env: &TestEnv, inputs: &[(&str, &str)]) -> Run {
    let mut vars: Vec<(String, String)> = vec![
        ("GITHUB_ACTIONS".into(), "true".into()),
        ("INPUT_GITHUB-TOKEN".into(), fake_github::TOKEN.into()),
        ("GITHUB_REPOSITORY".into(), "acme/web".into()),
        ("GITHUB_RUN_ID".into(), "4242".into()),
        ("GITHUB_RUN_ATTEMPT".into(), "1".into()),
    ];
    for (k, v) in inputs {
        vars.push((format!("INPUT_{}", k.to_ascii_uppercase()), (*v).into()));
    }
    env.exec(&env.admin.clone(), &[], vars)
}

/// CONTRACT §17: GitHub's secret scanning found a managed key in code. One scheduled `rotate`
/// (no force, a young key) answers it: every consumer on a working new key, the exposed one
/// Inactive, the alert resolved as revoked with a comment naming the run, one issue. Detection
/// costs one read per repository of an owner that is no organization (acme here: three
/// consumers, two repositories).
#[test]
fn a_secret_scanning_alert_for_a_managed_key_is_answered_in_one_run_and_resolved() {
    let env = TestEnv::new();
    let old = setup(&env);
    let number = env
        .github
        .raise_alert("acme/api", "aws_access_key_id", &old.id, "active");
    // Another type's secret, in the same repository: never read as a key.
    env.github.raise_alert(
        "acme/api",
        "github_personal_access_token",
        "ghp_notakey",
        "active",
    );
    let status = env.changes_nothing(USER, 3, || in_run(&env, &[("command", "status")]));
    assert_eq!(
        status.output("state").as_deref(),
        Some("exposed"),
        "{}",
        status.all()
    );
    assert!(status.all().contains("alert"), "{}", status.all());
    assert_eq!(
        env.github.count("GET", "/secret-scanning/alerts"),
        3,
        "the organization endpoint once (404: acme is no organization), then each repository: {:?}",
        env.github.log()
    );
    let run = in_run(&env, &[("issue-token", fake_github::TOKEN)]);
    assert_eq!(run.code, 0, "{}", run.all());
    taken_out_of_service(&env, &old);
    let recorded = Exposure::parse(&env.tags(USER)[EXPOSURE_TAG]).unwrap();
    assert_eq!(recorded.source, ExposureSource::Alert);
    let alert = env
        .github
        .alerts()
        .into_iter()
        .find(|a| a.number == number && a.secret_type == "aws_access_key_id")
        .unwrap();
    assert_eq!(
        (alert.state.as_str(), alert.resolution.as_deref()),
        ("resolved", Some("revoked"))
    );
    let comment = alert.resolution_comment.unwrap();
    assert!(
        comment.contains(&old.id) && comment.contains("/acme/web/actions/runs/4242"),
        "{comment}"
    );
    let other = env
        .github
        .alerts()
        .into_iter()
        .find(|a| a.secret_type != "aws_access_key_id")
        .unwrap();
    assert_eq!(
        other.state, "open",
        "another type's alert is not the tool's"
    );
    let issues = env.github.issues("acme/web");
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert!(
        issues[0]
            .title
            .ends_with(&format!("access key {} exposed", old.id))
    );
    env.assert_no_leaks();
}

/// An alert whose key id no user of the manifest has changes nothing, and stays open.
#[test]
fn an_alert_for_a_key_nobody_manages_changes_nothing() {
    let env = TestEnv::new();
    setup(&env);
    let stranger = env.create_key(&admin_name(&env));
    env.github
        .raise_alert("acme/web", "aws_access_key_id", &stranger.id, "active");
    let run = env.changes_nothing(USER, 0, || in_run(&env, &[]));
    assert!(!run.all().contains("exposed"), "{}", run.all());
    assert!(env.github.alerts().iter().all(|a| a.state == "open"));
    assert!(!env.tags(USER).contains_key(EXPOSURE_TAG));
}

/// A token that may not read the alerts: one warning naming the permission, and the run goes
/// on (here: nothing is due).
#[test]
fn a_token_that_may_not_read_alerts_warns_once_and_the_run_goes_on() {
    let env = TestEnv::new();
    setup(&env);
    env.github.deny_alerts();
    let run = env.changes_nothing(USER, 0, || in_run(&env, &[]));
    let warnings: Vec<_> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("::warning") && l.contains("secret scanning alerts"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", run.all());
    assert!(
        warnings[0].contains("secret_scanning_alerts: read"),
        "{}",
        warnings[0]
    );
}

/// A call CloudTrail recorded with `key`, `minutes` from now.
fn call(key: &str, minutes: i64, name: &str, ip: &str, agent: &str) -> Recorded {
    Recorded {
        time: chrono::Utc::now() + chrono::Duration::minutes(minutes),
        access_key_id: key.into(),
        event_name: name.into(),
        source_ip: ip.into(),
        user_agent: agent.into(),
    }
}

/// CONTRACT §17's evidence: CloudTrail's calls with the exposed key since it was seen, newest
/// first, in the report, the summary and the issue. The user agent is whatever the caller sent
/// (a forged workflow command, an HTML comment, a mention, a link): inert everywhere.
#[test]
fn who_used_an_exposed_key_is_shown_everywhere_and_a_callers_text_stays_inert() {
    let env = TestEnv::new();
    let old = setup(&env);
    let trail = fake_cloudtrail::fake();
    let hostile = "curl/8 \r::error::forged\n<!-- aws-key-rotator:reason x --> @octo [x](https://evil.example)";
    // A call a minute into the run (the straggler), one a day before the sighting (not
    // shown), one with another key (not shown).
    trail.record(call(&old.id, 1, "ListBuckets", "203.0.113.7", hostile));
    trail.record(call(
        &old.id,
        2,
        "GetCallerIdentity",
        "198.51.100.9",
        "aws-cli/2.15",
    ));
    trail.record(call(&old.id, -24 * 60, "CreateUser", "192.0.2.1", "before"));
    trail.record(call(&env.admin.id, 1, "DeleteBucket", "192.0.2.2", "other"));
    let run = in_run(
        &env,
        &[
            ("compromised-key-id", &old.id),
            ("issue-token", fake_github::TOKEN),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let asked = trail.requests();
    assert_eq!(
        asked.len(),
        1,
        "one LookupEvents per exposed key: {asked:?} {}",
        run.all()
    );
    assert_eq!(asked[0]["LookupAttributes"][0]["AttributeValue"], old.id);
    assert_eq!(asked[0]["MaxResults"], 50);
    for text in [
        &run.stdout,
        &run.summary,
        &env.github.issues("acme/web")[0].body,
    ] {
        let newest = text.find("198.51.100.9").expect("the newest call");
        let older = text.find("203.0.113.7").expect("the straggler's call");
        assert!(newest < older, "newest first: {text}");
        assert!(
            !text.contains("192.0.2.1") && !text.contains("192.0.2.2"),
            "{text}"
        );
    }
    assert!(
        runner_commands(&run.stdout)
            .iter()
            .all(|c| !c.contains("forged")),
        "{:?}",
        runner_commands(&run.stdout)
    );
    for md in [&run.summary, &env.github.issues("acme/web")[0].body] {
        assert!(!md.contains("<!-- aws-key-rotator:reason x"), "{md}");
        // No mention, and the link's brackets escaped: no link.
        assert!(
            !md.contains("@octo") && md.contains("\\[x\\](https://evil"),
            "{md}"
        );
    }
    // `status --json` carries it for machines.
    let status = env.exec(
        &env.admin.clone(),
        &["status", "--json"],
        vec![("GITHUB_TOKEN".into(), fake_github::TOKEN.into())],
    );
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let x = &v["users"][0]["exposure"];
    assert_eq!(x["source"], "manual", "{v}");
    assert_eq!(x["events"][0]["event_name"], "GetCallerIdentity", "{v}");
    assert_eq!(x["events"][1]["source_ip"], "203.0.113.7", "{v}");
    assert_eq!(x["events"].as_array().unwrap().len(), 2, "{v}");
    env.assert_no_leaks();
}

/// An identity that may not call LookupEvents: one line naming the permission, and the
/// response goes on (the key is still taken out of service).
#[test]
fn an_identity_that_may_not_read_cloudtrail_gets_one_line_naming_the_permission() {
    let env = TestEnv::new();
    let old = setup(&env);
    fake_cloudtrail::fake().deny();
    let run = in_run(&env, &[("compromised-key-id", &old.id)]);
    assert_eq!(run.code, 0, "{}", run.all());
    taken_out_of_service(&env, &old);
    let lines: Vec<_> = run
        .stdout
        .lines()
        .filter(|l| l.contains("cloudtrail:LookupEvents"))
        .collect();
    assert_eq!(lines.len(), 1, "{}", run.all());
    assert!(
        run.summary.contains("cloudtrail:LookupEvents"),
        "{}",
        run.summary
    );
}

/// CONTRACT §17, `on-exposure: revoke`: the exposed key is Inactive before the new key exists
/// (the dry run lists it first; the run says so), then the rotation runs as any other, and the
/// user ends an ordinary pending deletion.
#[test]
fn on_exposure_revoke_deactivates_the_exposed_key_first_then_rotates() {
    let env = TestEnv::new();
    let old = setup(&env);
    env.write_manifest(&MANIFEST.replace(
        "  delete-after-days: 0\n",
        "  delete-after-days: 0\n  on-exposure: revoke\n",
    ));
    let admin = env.admin.clone();
    // (Loud, as anything exposed: a dry run answers nothing.)
    let plan = env.changes_nothing(USER, 3, || {
        env.action(
            &admin,
            &[("compromised-key-id", &old.id), ("dry-run", "true")],
        )
    });
    let deactivate = plan
        .stdout
        .find(&format!("would set access key {} Inactive", old.id))
        .expect("the revoke is planned");
    let create = plan.stdout.find("create a new access key").unwrap();
    assert!(deactivate < create, "{}", plan.stdout);
    let run = env.action(&admin, &[("compromised-key-id", &old.id)]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.all().contains("revoked before the new key was made"),
        "{}",
        run.all()
    );
    taken_out_of_service(&env, &old);
    let journal = env.tags(USER)["aws-key-rotator/rotation"].clone();
    assert!(journal.contains("phase=deactivated"), "{journal}");
    let status = env.action(&admin, &[("command", "status")]);
    assert_eq!(
        status.output("state").as_deref(),
        Some("pending-deletion"),
        "{}",
        status.all()
    );
}

/// `on-exposure` takes `rotate` or `revoke`: anything else is a located manifest error, and
/// nothing changes.
#[test]
fn an_unknown_on_exposure_is_a_located_manifest_error() {
    let env = TestEnv::new();
    let old = setup(&env);
    env.write_manifest(&MANIFEST.replace(
        "  delete-after-days: 0\n",
        "  delete-after-days: 0\n  on-exposure: delete\n",
    ));
    let run = env.changes_nothing(USER, 2, || {
        env.action(&env.admin.clone(), &[("compromised-key-id", &old.id)])
    });
    assert!(
        run.all().contains("aws-key-rotation.yml:5:"),
        "{}",
        run.all()
    );
    assert!(run.all().contains("on-exposure: rotate"), "{}", run.all());
}

/// `exposed-only` (the hourly schedule beside the daily one): the exposed user is answered, the
/// one merely due by age waits for the daily run.
#[test]
fn an_exposed_only_run_answers_the_exposed_user_and_leaves_the_due_one() {
    let env = TestEnv::new();
    let (aged, exposed) = aged_and_exposed(&env);
    let run = env.action(
        &env.admin.clone(),
        &[
            ("compromised-key-id", &exposed.id),
            ("exposed-only", "true"),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.all().contains("exposed-only"), "{}", run.all());
    assert_eq!(
        env.keys("aged"),
        vec![(aged.id.clone(), "Active".to_owned())]
    );
    assert!(
        env.keys("exposed")
            .contains(&(exposed.id.clone(), "Inactive".to_owned()))
    );
}
