//! The commands beside the key's life cycle: `policy`, `verify` and `discover` (which change
//! nothing), and `migrate`.

use std::time::Duration;

use super::{Stop, Tuning, github_client, load_manifest, summarize};
use crate::action::{Console, Runtime};
use crate::aws;
use crate::cli::Settings;
use crate::exit::Exit;
use crate::ports::Events;
use crate::report;

/// `policy`: the least-privilege IAM policy for this manifest, on stdout (JSON, whatever
/// `--json` says: it is the document to attach). The account comes from STS when these
/// credentials work, else `*` (and says so).
pub(super) async fn policy(
    settings: &Settings,
    rt: &Runtime,
    tuning: &Tuning,
) -> Result<Exit, Stop> {
    let manifest = load_manifest(settings, rt)?;
    let aws = aws::load(Duration::ZERO, tuning.pacing.call_timeout).await;
    let region = aws
        .config()
        .region()
        .map_or_else(|| "us-east-1".to_owned(), ToString::to_string);
    let account = match aws.whoami().await {
        Ok(caller) if !caller.account.is_empty() => caller.account,
        // On stderr, even in Actions: stdout is the policy document alone.
        Ok(_) | Err(_) => {
            eprintln!(
                "warning: the account is written as * (these credentials could not tell it through STS): replace it with the rotator's account id"
            );
            "*".to_owned()
        }
    };
    let issuer = crate::migrate::trust::issuer(&rt.server_url);
    let doc = crate::policy::for_manifest(&manifest, &account, &region, &issuer);
    print!(
        "{}",
        serde_json::to_string_pretty(&doc).expect("a policy serializes") + "\n"
    );
    Ok(Exit::Ok)
}

/// `verify`: the credentials this step was given work, and are the expected key.
pub(super) async fn verify(
    settings: &Settings,
    console: &Console,
    tuning: &Tuning,
) -> Result<Exit, Stop> {
    let aws = aws::load(tuning.propagation, tuning.pacing.call_timeout).await;
    let key_id = aws
        .key_id()
        .await
        .map_err(|e| Stop(Exit::Invalid, e.to_string()))?;
    let expected = settings.expected_access_key_id.clone();
    let mut view = report::VerifyView {
        access_key_id: key_id.clone(),
        expected_access_key_id: expected.clone(),
        expected_role_arn: settings.expected_role_arn.clone(),
        ok: false,
        arn: None,
        account: None,
        message: String::new(),
    };
    let exit = match &expected {
        Some(expected) if &key_id != expected => {
            view.message = format!(
                "the credentials in this job are key {key_id}, not the expected {expected}: the secrets this workflow reads were not updated (check the consumer's secret names, or an environment that overrides them)"
            );
            console.error(&view.message);
            Exit::Failed
        }
        _ => match aws.whoami().await {
            Ok(caller)
                if settings.expected_role_arn.as_deref().is_some_and(|role| {
                    !crate::migrate::role::is_session_of(&caller.arn, role)
                }) =>
            {
                view.message = format!(
                    "the credentials in this job are {}, not a session of the expected role {}: the job did not assume the role (check its configure-aws-credentials step, role-to-assume and permissions: id-token: write)",
                    caller.arn,
                    settings.expected_role_arn.as_deref().unwrap_or_default()
                );
                view.arn = Some(caller.arn);
                view.account = Some(caller.account);
                console.error(&view.message);
                Exit::Failed
            }
            Ok(caller) => {
                view.message = match &settings.expected_role_arn {
                    Some(role) => format!(
                        "credentials work: {} is a session of the expected role {role} (account {})",
                        caller.arn, caller.account
                    ),
                    None => format!(
                        "credentials work: key {key_id} is {} (account {})",
                        caller.arn, caller.account
                    ),
                };
                view.ok = true;
                view.arn = Some(caller.arn);
                view.account = Some(caller.account);
                console.info(&view.message);
                Exit::Ok
            }
            Err(e) => {
                view.message =
                    format!("key {key_id} does not work with STS GetCallerIdentity: {e}");
                console.error(&view.message);
                Exit::Failed
            }
        },
    };
    if settings.json {
        print!("{}", console.scrub(&report::verify_json(view)));
    }
    Ok(exit)
}

/// `discover`: every place a managed secret name lives that the manifest does not list. Reads
/// only; each finding is a warning, and the run exits 0.
pub(super) async fn discover(
    settings: &Settings,
    rt: &Runtime,
    console: &Console,
    tuning: &Tuning,
) -> Result<Exit, Stop> {
    use crate::discover::{self, Inventory, KeyUse, Lister, Report};
    use crate::ports::{GhErrorKind, Iam};
    let manifest = load_manifest(settings, rt)?;
    let github = github_client(settings, rt, console, tuning, &manifest).await?;
    let mut inventory = Inventory::default();
    let owners = discover::owners(&manifest.users);
    for owner in &owners {
        let inv = github.inventory(owner).await.map_err(|e| {
            let code = match e.kind {
                GhErrorKind::Unavailable => Exit::Failed,
                _ => Exit::Invalid,
            };
            Stop(code, format!("discover: {}", e.message))
        })?;
        inventory.repositories += inv.repositories;
        inventory.stores.extend(inv.stores);
        for limit in &inv.limits {
            console.warn(&format!("discover: {limit}"));
        }
    }
    let findings = discover::findings(&manifest.users, &inventory);
    let aws = aws::load(tuning.propagation, tuning.pacing.call_timeout).await;
    let mut keys = std::collections::BTreeMap::new();
    for user in &manifest.users {
        if !findings.iter().any(|f| f.user == user.name) {
            continue;
        }
        let listed = aws.list_keys(&user.name).await.map_err(|e| {
            Stop(
                Exit::Invalid,
                format!("iam:ListAccessKeys for {}: {e}", user.name),
            )
        })?;
        let mut uses = Vec::new();
        for k in crate::rotation::state::oldest_first(listed) {
            let used = aws
                .last_used(&k.id)
                .await
                .map(|u| u.to_string())
                .unwrap_or_else(|e| format!("last use unknown ({e})"));
            uses.push(KeyUse {
                access_key_id: k.id.clone(),
                status: format!("{:?}", k.status),
                last_used: used,
            });
        }
        keys.insert(user.name.clone(), uses);
    }
    for f in &findings {
        console.warn(&format!(
            "{}: {} holds {}, but the manifest does not list it as a consumer: it may use this user's key and would break when the old key is retired. Check it, then add it to the manifest",
            f.user, f.store, f.secret
        ));
    }
    let report = Report::new(
        owners,
        inventory.repositories,
        github.requests(),
        &manifest.users,
        &findings,
        &keys,
    );
    if settings.json {
        print!("{}", console.scrub(&report.json()));
    } else {
        console.info(report.text().trim_end());
    }
    summarize(rt, console, || report.markdown());
    Ok(Exit::Ok)
}

/// `migrate` (CONTRACT §13): the provider, each user's role and variables, and the workflow
/// lines to replace; `--dry-run` plans only.
pub(super) async fn migrate(
    settings: &Settings,
    rt: &Runtime,
    console: &Console,
    tuning: &Tuning,
) -> Result<Exit, Stop> {
    use crate::migrate::run::{self, Settings as MigrateSettings};
    let manifest = load_manifest(settings, rt)?;
    let github = github_client(settings, rt, console, tuning, &manifest).await?;
    let aws = aws::load(Duration::ZERO, tuning.pacing.call_timeout).await;
    let region = aws
        .config()
        .region()
        .map_or_else(|| "us-east-1".to_owned(), ToString::to_string);
    let view = run::migrate(
        &aws,
        &github,
        &manifest.users,
        &MigrateSettings {
            server_url: &rt.server_url,
            region: &region,
            dry_run: settings.dry_run,
        },
        console,
    )
    .await
    .map_err(|(code, message)| Stop(code, format!("migrate: {message}")))?;
    for u in &view.users {
        if let Some(m) = &u.message
            && u.exit != Exit::Ok
        {
            console.error(&format!("{}: {m}", u.name));
        }
    }
    let exit = view.exit();
    let markdown = view.markdown();
    if settings.json {
        print!("{}", console.scrub(&report::migration_json(view)));
    } else {
        console.info(view.text().trim_end());
    }
    summarize(rt, console, || markdown);
    Ok(exit)
}
