//! The commands beside the key's life cycle: `policy` and `verify` (which change nothing), and
//! `migrate`. `discover` has a file of its own.

use std::time::Duration;

use super::{Stop, github_client, load_all, load_manifest, summarize};
use crate::action::{Console, Runtime};
use crate::adapters::aws;
use crate::config::Settings;
use crate::config::Tuning;
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
    let selected = load_manifest(settings, rt)?;
    let aws = aws::load(Duration::ZERO, tuning.pacing.call_timeout).await;
    let region = aws
        .config()
        .region()
        .map_or_else(|| "us-east-1".to_owned(), ToString::to_string);
    // `--user NAME` of another account: the permissions of NAME's account role, for every
    // user of the manifest it reaches (CONTRACT §15), and its trust on stderr.
    if let [user] = selected.users.as_slice()
        && let Some(role) = &user.account_role
    {
        let manifest = load_all(settings, rt)?;
        let doc = crate::policy::for_account_role(&manifest, role, &region);
        let rotator = aws
            .whoami()
            .await
            .ok()
            .map(|c| rotator_principal(&c.arn))
            .unwrap_or_else(|| "arn:aws:iam::ROTATOR_ACCOUNT_ID:user/ROTATOR".to_owned());
        let trust = crate::policy::account_role_trust(&rotator, role.external_id.as_deref());
        eprintln!(
            "The permissions of {} (stdout). Its trust policy (aws iam update-assume-role-policy --role-name NAME --policy-document file://trust.json):\n{}",
            role.arn,
            serde_json::to_string_pretty(&trust).expect("a policy serializes")
        );
        print!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("a policy serializes") + "\n"
        );
        return Ok(Exit::Ok);
    }
    let manifest = selected;
    let issuer = match settings.policy_for {
        // Placed before anything is printed: a policy for the wrong issuer is worse than none.
        crate::config::PolicyFor::Migrate => {
            Some(rt.oidc_issuer().map_err(|e| Stop::new(Exit::Invalid, e))?)
        }
        crate::config::PolicyFor::Rotator => None,
    };
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
    let doc = match issuer {
        Some(issuer) => migrate_policy(&aws, &manifest, &account, &issuer).await?,
        None => crate::policy::for_manifest(&manifest, &account, &region),
    };
    if manifest.users.iter().any(|u| u.account_role.is_some()) {
        eprintln!(
            "The users of other accounts are reached through their account roles: this policy lets the rotator assume them; run policy --user NAME for each role's own permissions and trust"
        );
    }
    print!(
        "{}",
        serde_json::to_string_pretty(&doc).expect("a policy serializes") + "\n"
    );
    Ok(Exit::Ok)
}

/// `policy --for migrate`: the policy of the identity that runs `migrate` (CONTRACT §12a).
async fn migrate_policy(
    aws: &aws::Aws,
    manifest: &crate::manifest::Manifest,
    account: &str,
    issuer: &str,
) -> Result<serde_json::Value, Stop> {
    let holds = migrate_holds(aws, manifest).await?;
    eprintln!(
        "The policy of the identity that runs migrate (a person, or a workflow in a protected environment): never give it to the daily rotator, which needs none of it"
    );
    Ok(crate::policy::for_migrate(
        manifest, account, issuer, &holds,
    ))
}

/// What each moving user of `manifest` holds (managed policies, its groups' included, or those
/// `migrate.permissions` lists; its boundary), read from IAM: `policy --for migrate` allows a
/// role exactly these.
async fn migrate_holds(
    aws: &aws::Aws,
    manifest: &crate::manifest::Manifest,
) -> Result<std::collections::BTreeMap<String, crate::policy::Holds>, Stop> {
    use crate::ports::migrate::Roles;
    let mut holds = std::collections::BTreeMap::new();
    for u in manifest
        .users
        .iter()
        .filter(|u| u.migrating() && u.account_role.is_none())
    {
        let held = aws.user_permissions(&u.name).await.map_err(|e| {
            Stop::new(
                Exit::Invalid,
                format!(
                    "policy --for migrate allows each role only what its user holds, and could not read what {} holds ({e}): run it with credentials that may read the users' policies (iam:GetUser, iam:ListAttachedUserPolicies, iam:ListGroupsForUser, iam:ListAttachedGroupPolicies)",
                    u.name
                ),
            )
        })?;
        let managed = match &u.migrate.policies {
            Some(listed) => listed.clone(),
            None => held
                .own
                .attached
                .iter()
                .chain(held.groups.values().flat_map(|g| g.attached.iter()))
                .cloned()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
        };
        holds.insert(
            u.name.clone(),
            crate::policy::Holds {
                managed,
                boundary: held.own.boundary.clone(),
            },
        );
    }
    Ok(holds)
}

/// The principal an account role trusts for the caller `arn`: a user as it is, an assumed role's
/// session as its role (`arn:aws:sts::A:assumed-role/R/S` → `arn:aws:iam::A:role/R`).
fn rotator_principal(arn: &str) -> String {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if let [_, partition, "sts", _, account, resource] = parts.as_slice()
        && let Some(rest) = resource.strip_prefix("assumed-role/")
        && let Some((role, _)) = rest.split_once('/')
    {
        return format!("arn:{partition}:iam::{account}:role/{role}");
    }
    arn.to_owned()
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
        .map_err(|e| Stop::new(Exit::Invalid, e.to_string()))?;
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
        _ => {
            let (ok, message, caller) = verdict(settings, &key_id, aws.whoami().await);
            view.ok = ok;
            view.message = message;
            if let Some(c) = caller {
                view.arn = Some(c.arn);
                view.account = Some(c.account);
            }
            if ok {
                console.info(&view.message);
                Exit::Ok
            } else {
                console.error(&view.message);
                Exit::Failed
            }
        }
    };
    if settings.json {
        print!("{}", console.scrub(&report::verify_json(view)));
    }
    Ok(exit)
}

/// What STS says of this step's credentials: whether they are what was expected, in words,
/// and who they are.
fn verdict(
    settings: &Settings,
    key_id: &str,
    whoami: Result<crate::ports::Caller, crate::ports::IamError>,
) -> (bool, String, Option<crate::ports::Caller>) {
    let caller = match whoami {
        Ok(c) => c,
        Err(e) => {
            return (
                false,
                format!("key {key_id} does not work with STS GetCallerIdentity: {e}"),
                None,
            );
        }
    };
    match settings.expected_role_arn.as_deref() {
        Some(role) if !crate::model::arn::is_session_of(&caller.arn, role) => (
            false,
            format!(
                "the credentials in this job are {}, not a session of the expected role {role}: the job did not assume the role (check its configure-aws-credentials step, role-to-assume and permissions: id-token: write)",
                caller.arn
            ),
            Some(caller),
        ),
        Some(role) => (
            true,
            format!(
                "credentials work: {} is a session of the expected role {role} (account {})",
                caller.arn, caller.account
            ),
            Some(caller),
        ),
        None => (
            true,
            format!(
                "credentials work: key {key_id} is {} (account {})",
                caller.arn, caller.account
            ),
            Some(caller),
        ),
    }
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
    // Whose tokens the roles trust, placed before anything is made (CONTRACT §12a).
    let issuer = rt.oidc_issuer().map_err(|e| Stop::new(Exit::Invalid, e))?;
    if let Some(u) = manifest
        .users
        .iter()
        .find(|u| u.migrating() && u.account_role.is_some())
    {
        return Err(Stop::new(
            Exit::Invalid,
            format!(
                "user {} has an account-role: migrate works in the account of its own credentials only; run it with credentials of account {} (select the user with {})",
                u.name,
                u.account_role.as_ref().map_or("", |r| r.account.as_str()),
                settings.named("user")
            ),
        ));
    }
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
            issuer: &issuer,
            region: &region,
            dry_run: settings.dry_run,
        },
        console,
    )
    .await
    .map_err(|stop| stop.within("migrate"))?;
    for u in &view.users {
        if let Some(m) = &u.message
            && u.exit != Exit::Ok
        {
            console.error(&format!("{}: {m}", u.name));
        }
        for w in &u.warnings {
            console.warn(&format!("{}: {w}", u.name));
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
