//! A complete local rotation against the emulators, narrated: `scripts/demo` runs it with
//! `--nocapture` so each step's output is shown. It is also an ordinary test.

use crate::support::*;

const MANIFEST: &str = "\
version: 1
users:
  - name: ci-deployer
    consumers:
      - repository: acme/web
      - repository: acme/web
        environment: production
    external:
      - on-prem backup script
";

fn show(title: &str, run: &Run) {
    println!(
        "\n$ aws-key-rotator {title}   (exit {})\n{}{}",
        run.code, run.stdout, run.stderr
    );
}

#[test]
fn local_rotation_from_start_to_finish() {
    let env = TestEnv::new();
    env.rotating_user("ci-deployer");
    let old = env.aged_key("ci-deployer", 120);
    env.github.add_repo("acme/web");
    env.github.add_environment("acme/web", "production");
    env.seed(
        &[repo("acme/web"), environment("acme/web", "production")],
        &old,
        120,
    );
    let manifest = env.workspace.path().join("aws-key-rotation.yml");
    std::fs::write(&manifest, MANIFEST).unwrap();
    let config = manifest.to_str().unwrap();
    println!(
        "moto (IAM auth mode) at {}, fake GitHub at {}",
        env.moto_url, env.github.url
    );
    println!(
        "user ci-deployer has one key, {}, 120 days old, in acme/web and its production environment",
        old.id
    );

    let run = env.cli(&old, &["status", "--config", config]);
    show("status", &run);
    assert_eq!(run.code, 0);

    let run = env.cli(&old, &["rotate", "--config", config, "--dry-run"]);
    show("rotate --dry-run", &run);
    assert_eq!(run.code, 0);

    let run = env.cli(&old, &["rotate", "--config", config]);
    show("rotate", &run);
    assert_eq!(run.code, 0);
    let new = env.held_default(&repo("acme/web")).unwrap();

    println!(
        "\n(a later job starts and reads the new key {} from its secrets)",
        new.id
    );
    let run = env.cli(&new, &["verify", "--expected-access-key-id", &new.id]);
    show("verify", &run);
    assert_eq!(run.code, 0);

    let run = env.cli(&new, &["deactivate", "--config", config]);
    show("deactivate", &run);
    assert_eq!(
        run.code, 0,
        "the grace period has not passed: nothing to do yet"
    );
    assert!(env.sts_accepts(&old));

    println!("\n(skipping the 24-hour grace period with --deactivate-after-hours 0)");
    let run = env.cli(
        &new,
        &[
            "deactivate",
            "--config",
            config,
            "--deactivate-after-hours",
            "0",
        ],
    );
    show("deactivate --deactivate-after-hours 0", &run);
    assert_eq!(
        run.code, 3,
        "an external consumer needs a person to confirm"
    );
    assert!(env.sts_accepts(&old));

    println!("\n(a person confirms the on-prem backup script holds the new key)");
    let run = env.cli(
        &new,
        &[
            "deactivate",
            "--config",
            config,
            "--deactivate-after-hours",
            "0",
            "--force",
        ],
    );
    show("deactivate --deactivate-after-hours 0 --force", &run);
    assert_eq!(run.code, 0);
    assert!(!env.sts_accepts(&old));

    println!("\n(skipping the 7-day grace period with --delete-after-days 0)");
    let run = env.cli(
        &new,
        &["delete", "--config", config, "--delete-after-days", "0"],
    );
    show("delete --delete-after-days 0", &run);
    assert_eq!(run.code, 0);
    assert_eq!(
        env.keys("ci-deployer"),
        vec![(new.id.clone(), "Active".to_owned())]
    );
    println!(
        "\nci-deployer now has exactly one key, {}, held by every consumer; the old key is gone.",
        new.id
    );
}
