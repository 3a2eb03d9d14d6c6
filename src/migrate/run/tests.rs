//! `migrate` through in-memory ports, a fault at every call: an error (nothing happened) or a
//! lost answer (it happened). After each: no variable names a role that does not exist, a role
//! the tool did not make is never touched, a dry run changes nothing, and a fault-free run
//! afterwards reaches exactly what an undisturbed run reaches.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use secrecy::SecretString;
use serde_json::json;

use super::*;
use crate::manifest::{self, Scope};
use crate::migrate::role::{MADE_TAG, RoleChange};
use crate::ports::migrate::{Permissions, Provider, Readers, RoleState, UserPermissions};
use crate::ports::{GhErrorKind, IamError, IamErrorKind};

#[derive(Clone, Debug, Default, PartialEq)]
struct Cloud {
    provider: Option<Provider>,
    roles: BTreeMap<String, RoleState>,
    vars: BTreeMap<(Scope, String), String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Fault {
    Error,
    Lost,
}

#[derive(Default)]
struct Mem {
    cloud: RefCell<Cloud>,
    calls: Cell<usize>,
    fault: Option<(usize, Fault)>,
    /// The organization secret's readers, when not the two of the default.
    org: Option<Option<Readers>>,
}

impl Mem {
    /// Counts a call; `Err` before it happens (an error) or after (a lost answer).
    fn call<T>(&self, f: impl FnOnce(&mut Cloud) -> T) -> Result<T, String> {
        let n = self.calls.get();
        self.calls.set(n + 1);
        match self.fault {
            Some((at, Fault::Error)) if at == n => Err("injected error".into()),
            Some((at, Fault::Lost)) if at == n => {
                f(&mut self.cloud.borrow_mut());
                Err("injected lost answer".into())
            }
            _ => Ok(f(&mut self.cloud.borrow_mut())),
        }
    }
}

fn iam(e: String) -> IamError {
    IamError {
        kind: IamErrorKind::Other,
        message: e,
    }
}
fn gh(e: String) -> GhError {
    GhError {
        kind: GhErrorKind::Unavailable,
        message: e,
        uncertain: true,
        status: None,
    }
}

const ACCOUNT: &str = "123456789012";

impl Roles for Mem {
    async fn account(&self) -> Result<(String, String), IamError> {
        self.call(|_| ("aws".to_owned(), ACCOUNT.to_owned()))
            .map_err(iam)
    }
    async fn provider(&self, _: &str) -> Result<Option<Provider>, IamError> {
        self.call(|c| c.provider.clone()).map_err(iam)
    }
    async fn create_provider(&self, url: &str, audience: &str) -> Result<String, IamError> {
        let arn = format!(
            "arn:aws:iam::{ACCOUNT}:oidc-provider/{}",
            url.trim_start_matches("https://")
        );
        self.call(|c| {
            c.provider = Some(Provider {
                arn: arn.clone(),
                audiences: vec![audience.to_owned()],
                made_here: true,
            });
            arn.clone()
        })
        .map_err(iam)
    }
    async fn add_audience(&self, _: &str, audience: &str) -> Result<(), IamError> {
        self.call(|c| {
            if let Some(p) = &mut c.provider {
                p.audiences.push(audience.to_owned());
            }
        })
        .map_err(iam)
    }
    async fn user_permissions(&self, _: &str) -> Result<UserPermissions, IamError> {
        self.call(|_| UserPermissions {
            own: Permissions {
                attached: ["arn:aws:iam::aws:policy/ReadOnlyAccess".to_owned()].into(),
                inline: [(
                    "deploy".to_owned(),
                    json!({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}),
                )]
                .into(),
                boundary: Some(format!("arn:aws:iam::{ACCOUNT}:policy/b")),
            },
            groups: BTreeMap::new(),
        })
        .map_err(iam)
    }
    async fn role(&self, name: &str) -> Result<Option<RoleState>, IamError> {
        self.call(|c| c.roles.get(name).cloned()).map_err(iam)
    }
    async fn change_role(
        &self,
        name: &str,
        user: &str,
        change: &RoleChange,
    ) -> Result<(), IamError> {
        self.call(|c| apply_change(c, name, user, change))
            .map_err(iam)?
            .map_err(iam)
    }
}

/// One role change as IAM makes it.
fn apply_change(c: &mut Cloud, name: &str, user: &str, change: &RoleChange) -> Result<(), String> {
    if let RoleChange::Create { trust, boundary } = change {
        if c.roles.contains_key(name) {
            return Err("EntityAlreadyExists".to_owned());
        }
        let role = RoleState {
            arn: format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
            made_for: Some(user.to_owned()),
            trust: trust.clone(),
            max_session_seconds: 3600,
            permissions: Permissions {
                boundary: boundary.clone(),
                ..Permissions::default()
            },
        };
        c.roles.insert(name.to_owned(), role);
        return Ok(());
    }
    let r = c.roles.get_mut(name).ok_or("NoSuchEntity")?;
    let p = &mut r.permissions;
    match change {
        RoleChange::Create { .. } => unreachable!("handled above"),
        RoleChange::UpdateTrust(t) => r.trust = t.clone(),
        RoleChange::SessionOneHour => r.max_session_seconds = 3600,
        RoleChange::SetBoundary(b) => p.boundary = Some(b.clone()),
        RoleChange::RemoveBoundary => p.boundary = None,
        RoleChange::Attach(a) => {
            p.attached.insert(a.clone());
        }
        RoleChange::Detach(a) => {
            p.attached.remove(a);
        }
        RoleChange::PutInline(n, d) => {
            p.inline.insert(n.clone(), d.clone());
        }
        RoleChange::DeleteInline(n) => {
            p.inline.remove(n);
        }
    }
    Ok(())
}

impl Variables for Mem {
    async fn canonical(&self, scope: &Scope) -> Result<Scope, GhError> {
        self.call(|_| scope.clone()).map_err(gh)
    }
    async fn org_readers(&self, _: &str, _: &str) -> Result<Option<Readers>, GhError> {
        let readers = self.org.clone().unwrap_or_else(|| {
            Some(Readers {
                visibility: "selected".into(),
                repositories: vec!["acme/web".into(), "acme/tools".into()],
                selected_ids: vec![1, 2],
            })
        });
        self.call(|_| readers).map_err(gh)
    }
    async fn variable(&self, scope: &Scope, name: &str) -> Result<Option<String>, GhError> {
        self.call(|c| c.vars.get(&(scope.clone(), name.to_owned())).cloned())
            .map_err(gh)
    }
    async fn write_variable(
        &self,
        scope: &Scope,
        name: &str,
        value: &str,
        _: bool,
        _: Option<&Readers>,
    ) -> Result<(), GhError> {
        self.call(|c| {
            c.vars
                .insert((scope.clone(), name.to_owned()), value.to_owned());
        })
        .map_err(gh)
    }
    async fn fork_pull_requests_write(&self, _: &str) -> Result<Option<bool>, GhError> {
        self.call(|_| None).map_err(gh)
    }
    async fn workflow_files(&self, _: &str) -> Result<Vec<(String, String)>, GhError> {
        self.call(|_| {
            vec![(
                ".github/workflows/deploy.yml".to_owned(),
                "env:\n  K: ${{ secrets.AWS_ACCESS_KEY_ID }}\n".to_owned(),
            )]
        })
        .map_err(gh)
    }
}

struct Quiet;
impl Events for Quiet {
    fn mask(&self, _: &SecretString) {}
    fn info(&self, _: &str) {}
    fn warn(&self, _: &str) {}
    fn group(&self, _: &str) {}
    fn end_group(&self) {}
}

fn users() -> Vec<UserSpec> {
    manifest::parse(
        "m.yml",
        "version: 1
users:
  - name: ci
    migrate: {}
    consumers:
      - repository: acme/web
      - repository: acme/api
        environment: production
      - organization: acme
      - repository: acme/web
        app: dependabot
  - name: batch
    migrate: { role-name: gha-batch, variable: BATCH_ROLE_ARN, permissions: [arn:aws:iam::aws:policy/PowerUserAccess] }
    consumers:
      - repository: acme/batch
",
    )
    .unwrap()
    .users
}

fn run(mem: &Mem, dry_run: bool) -> Result<MigrationView, Stopped> {
    run_users(mem, &users(), dry_run)
}

fn run_users(mem: &Mem, users: &[UserSpec], dry_run: bool) -> Result<MigrationView, Stopped> {
    let settings = Settings {
        issuer: "token.actions.githubusercontent.com",
        region: "us-east-1",
        dry_run,
    };
    crate::rotation::memory::block_on(migrate(mem, mem, users, &settings, &Quiet))
}

/// What an undisturbed run makes from `start`, and how many calls it takes.
fn undisturbed(start: &Cloud) -> (Cloud, usize) {
    let mem = Mem {
        cloud: RefCell::new(start.clone()),
        ..Mem::default()
    };
    let view = run(&mem, false).unwrap();
    assert_eq!(view.exit(), Exit::Ok, "{}", view.text());
    let calls = mem.calls.get();
    (mem.cloud.into_inner(), calls)
}

/// Every variable names a role that exists (a consumer never gets an ARN it cannot assume).
fn variables_name_roles(c: &Cloud) -> Result<(), String> {
    for ((scope, _), arn) in &c.vars {
        if !c.roles.values().any(|r| &r.arn == arn) {
            return Err(format!("{scope} names {arn}, which does not exist"));
        }
    }
    Ok(())
}

#[test]
fn a_fault_at_every_call_leaves_nothing_wrong_and_the_next_run_converges() {
    // From nothing, and from a drifted role the tool made (a second migrate converges it).
    let (made, _) = undisturbed(&Cloud::default());
    assert_eq!(made.roles.len(), 2);
    assert_eq!(made.vars.len(), 4, "{:?}", made.vars.keys());
    let mut drifted = made.clone();
    let role = drifted.roles.get_mut("gha-ci").unwrap();
    role.trust = json!({"Statement": []});
    role.max_session_seconds = 43200;
    role.permissions.inline.insert("stale".into(), json!({}));
    role.permissions.boundary = None;
    drifted.vars.clear();
    let mut explored = 0;
    for start in [Cloud::default(), drifted] {
        let (want, calls) = undisturbed(&start);
        assert_eq!(want, made, "every start ends the same");
        for at in 0..calls {
            for fault in [Fault::Error, Fault::Lost] {
                let mem = Mem {
                    cloud: RefCell::new(start.clone()),
                    fault: Some((at, fault)),
                    ..Mem::default()
                };
                let result = run(&mem, false);
                let after = mem.cloud.borrow().clone();
                variables_name_roles(&after).unwrap_or_else(|e| panic!("call {at}: {e}"));
                if let Ok(view) = &result {
                    assert_ne!(view.exit(), Exit::Refused, "call {at}: {}", view.text());
                }
                let (healed, _) = undisturbed(&after);
                assert_eq!(healed, want, "call {at}: the next run converges");
                explored += 1;
            }
        }
    }
    assert!(explored > 40, "{explored}");
}

#[test]
fn under_any_fault_a_dry_run_changes_nothing_and_a_role_it_did_not_make_is_never_touched() {
    let mut foreign = Cloud::default();
    foreign.roles.insert(
        "gha-ci".into(),
        RoleState {
            arn: format!("arn:aws:iam::{ACCOUNT}:role/gha-ci"),
            made_for: None,
            trust: json!({"Statement": ["theirs"]}),
            max_session_seconds: 43200,
            permissions: Permissions::default(),
        },
    );
    let mem = Mem {
        cloud: RefCell::new(foreign.clone()),
        ..Mem::default()
    };
    let view = run(&mem, false).unwrap();
    let calls = mem.calls.get();
    assert_eq!(view.exit(), Exit::Refused, "{}", view.text());
    assert!(view.users[0].message.as_deref().unwrap().contains(MADE_TAG));
    for at in 0..calls + 1 {
        for fault in [Fault::Error, Fault::Lost] {
            for dry_run in [false, true] {
                let mem = Mem {
                    cloud: RefCell::new(foreign.clone()),
                    fault: Some((at, fault)),
                    ..Mem::default()
                };
                let _ = run(&mem, dry_run);
                let after = mem.cloud.borrow();
                assert_eq!(after.roles["gha-ci"], foreign.roles["gha-ci"], "call {at}");
                let names_it = after.vars.values().any(|arn| arn.ends_with("role/gha-ci"));
                assert!(
                    !names_it,
                    "call {at}: a variable names a role it does not manage"
                );
                if dry_run {
                    assert_eq!(*after, foreign, "call {at}: a dry run changed something");
                }
            }
        }
    }
}

#[test]
fn a_trust_over_iams_limit_and_an_org_consumer_on_the_role_with_no_secret_refuse_and_change_nothing()
 {
    // 200 selected repositories: the trust would exceed 2,048 characters (exit 2).
    let many = Mem {
        org: Some(Some(Readers {
            visibility: "selected".into(),
            repositories: (0..200).map(|i| format!("acme/repository-{i}")).collect(),
            selected_ids: (0..200).collect(),
        })),
        ..Mem::default()
    };
    let view = run(&many, false).unwrap();
    let ci = &view.users[0];
    assert_eq!(ci.exit, Exit::Invalid, "{}", view.text());
    assert!(
        ci.message
            .as_deref()
            .unwrap()
            .contains("over IAM's default limit of 2048")
    );
    assert!(!many.cloud.borrow().roles.contains_key("gha-ci"));
    assert!(
        many.cloud
            .borrow()
            .vars
            .keys()
            .all(|(s, _)| !matches!(s, Scope::Repository(r) if r == "acme/web"))
    );
    // An organization consumer already on the role whose secret is gone: the trust is not
    // narrowed under it (exit 3), nothing changes.
    let on_role = manifest::parse(
        "m.yml",
        "version: 1\nusers:\n  - name: ci\n    consumers:\n      - {repository: acme/web}\n      - {organization: acme, oidc: true}\n",
    )
    .unwrap()
    .users;
    let gone = Mem {
        org: Some(None),
        ..Mem::default()
    };
    let view = run_users(&gone, &on_role, false).unwrap();
    assert_eq!(view.users[0].exit, Exit::Refused, "{}", view.text());
    assert!(
        view.users[0]
            .message
            .as_deref()
            .unwrap()
            .contains("would leave the trust")
    );
    assert_eq!(*gone.cloud.borrow(), Cloud::default(), "nothing was made");
}
