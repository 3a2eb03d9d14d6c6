//! In-memory ports for the executor's unit tests: IAM with keys and tags, secret stores that
//! keep `updated_at` in whole seconds, a clock that moves only when someone sleeps, and a way
//! to lose the answer of one write. (The seeded simulation in `tests/simulation` is the
//! thorough one; these are for reading one behaviour at a time.)

use std::cell::RefCell;
use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use secrecy::{ExposeSecret, SecretString};

use super::context::Ctx;
use super::context::LeaseSettings;
use super::plan::{LastUse, Options};
use super::verify::VerifySettings;
use crate::manifest::{Consumer, Scope, SecretNames, UserSpec};
use crate::model::{KeyInfo, KeyStatus};
use crate::ports::{
    Caller, Clock, Dispatched, Events, GhError, GhErrorKind, Iam, IamError, IamErrorKind, NewKey,
    RunInfo, SecretStore, Stop, StoreError, StoreErrorKind, Workflows,
};
use crate::seal::ScopeKey;

/// What a write does when it is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteFault {
    /// Refused: nothing happened.
    Fails,
    /// It happened, but its answer was lost.
    LandsUnanswered,
    /// It did not happen, and its answer was lost too.
    LostUnanswered,
}

#[derive(Debug, Default)]
pub struct World {
    pub now: i64,
    pub keys: Vec<(KeyInfo, String)>,
    pub tags: BTreeMap<String, String>,
    /// The managed policies attached to the user, by name.
    pub policies: Vec<String>,
    /// `(scope, name)` → value and when it was last written.
    pub secrets: BTreeMap<(Scope, String), (String, DateTime<Utc>)>,
    /// The fault the next write of a secret of this name meets (once).
    pub write_faults: BTreeMap<String, WriteFault>,
    /// STS refuses every new key.
    pub sts_refuses: bool,
    pub made: u32,
    pub log: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Mem(pub RefCell<World>);

pub fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
}

impl Mem {
    pub fn world(&self) -> std::cell::RefMut<'_, World> {
        self.0.borrow_mut()
    }
    /// A key made `days` ago, held by every consumer of `user`.
    pub fn key_held_by(&self, user: &UserSpec, id: &str, days: i64) {
        let mut w = self.world();
        let created = at(w.now) - Duration::days(days);
        w.keys.push((
            KeyInfo {
                id: id.into(),
                status: KeyStatus::Active,
                created,
            },
            secret_of(id),
        ));
        for c in &user.consumers {
            let pair = [
                (&c.secrets.access_key_id, id.to_owned()),
                (&c.secrets.secret_access_key, secret_of(id)),
            ];
            for (name, value) in pair {
                w.secrets
                    .insert((c.scope.clone(), name.clone()), (value, created));
            }
        }
    }
    /// The key id and secret consumer `c` holds.
    pub fn held(&self, c: &Consumer) -> (Option<String>, Option<String>) {
        let w = self.0.borrow();
        let get = |name: &str| {
            w.secrets
                .get(&(c.scope.clone(), name.to_owned()))
                .map(|(v, _)| v.clone())
        };
        (
            get(&c.secrets.access_key_id),
            get(&c.secrets.secret_access_key),
        )
    }
}

pub fn secret_of(id: &str) -> String {
    format!("secret-of-{id}")
}

/// A user with one SSM consumer per name given (readable stores: their old values are known).
pub fn user(consumers: &[&str]) -> UserSpec {
    crate::testing::user_of(
        consumers
            .iter()
            .map(|c| Consumer {
                pull_requests: true,
                scope: Scope::ParameterStore { region: None },
                secrets: SecretNames {
                    access_key_id: format!("/{c}/id"),
                    secret_access_key: format!("/{c}/secret"),
                },
            })
            .collect(),
    )
}

fn iam_err(message: &str) -> IamError {
    IamError {
        kind: IamErrorKind::Other,
        message: message.into(),
    }
}

impl Iam for Mem {
    async fn list_keys(&self, _: &str) -> Result<Vec<KeyInfo>, IamError> {
        Ok(self
            .0
            .borrow()
            .keys
            .iter()
            .map(|(k, _)| k.clone())
            .collect())
    }
    async fn create_key(&self, _: &str) -> Result<NewKey, IamError> {
        let mut w = self.world();
        if w.keys.len() >= 2 {
            return Err(IamError {
                kind: IamErrorKind::LimitExceeded,
                message: "two keys already".into(),
            });
        }
        w.made += 1;
        let id = format!("AKIANEW{}", w.made);
        let created = at(w.now);
        w.keys.push((
            KeyInfo {
                id: id.clone(),
                status: KeyStatus::Active,
                created,
            },
            secret_of(&id),
        ));
        w.log.push(format!("CreateAccessKey {id}"));
        Ok(NewKey {
            secret: SecretString::from(secret_of(&id)),
            id,
            created,
        })
    }
    async fn set_inactive(&self, _: &str, key_id: &str) -> Result<(), IamError> {
        for (k, _) in self.world().keys.iter_mut().filter(|(k, _)| k.id == key_id) {
            k.status = KeyStatus::Inactive;
        }
        Ok(())
    }
    async fn delete_key(&self, _: &str, key_id: &str) -> Result<(), IamError> {
        let mut w = self.world();
        w.keys.retain(|(k, _)| k.id != key_id);
        w.log.push(format!("DeleteAccessKey {key_id}"));
        Ok(())
    }
    async fn last_used(&self, _: &str) -> Result<LastUse, IamError> {
        Ok(LastUse {
            date: None,
            service: String::new(),
            region: String::new(),
        })
    }
    async fn attached_policies(&self, _: &str) -> Result<Vec<String>, IamError> {
        Ok(self.0.borrow().policies.clone())
    }
    async fn tags(&self, _: &str) -> Result<Vec<(String, String)>, IamError> {
        Ok(self.0.borrow().tags.clone().into_iter().collect())
    }
    async fn set_tag(&self, _: &str, key: &str, value: &str) -> Result<(), IamError> {
        self.world().tags.insert(key.into(), value.into());
        Ok(())
    }
    async fn remove_tag(&self, _: &str, key: &str) -> Result<(), IamError> {
        self.world().tags.remove(key);
        Ok(())
    }
    async fn prove_key(&self, key: &NewKey) -> Result<Caller, IamError> {
        let w = self.0.borrow();
        let works = w.keys.iter().any(|(k, s)| {
            k.id == key.id && k.status == KeyStatus::Active && s == key.secret.expose_secret()
        });
        if w.sts_refuses || !works {
            return Err(iam_err("InvalidClientTokenId"));
        }
        Ok(Caller {
            account: "111122223333".into(),
            arn: "arn:aws:iam::111122223333:user/ci".into(),
        })
    }
}

fn unanswered(name: &str) -> StoreError {
    StoreError {
        kind: StoreErrorKind::Unavailable,
        message: format!("writing {name}: the connection was reset"),
        uncertain: true,
        status: None,
    }
}

impl SecretStore for Mem {
    async fn public_key(&self, _: &Scope) -> Result<ScopeKey, StoreError> {
        Ok(
            ScopeKey::parse("k1", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
                .expect("32 bytes"),
        )
    }
    async fn updated_at(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let w = self.0.borrow();
        Ok(w.secrets
            .get(&(scope.clone(), name.to_owned()))
            .map(|(_, t)| *t))
    }
    async fn put(
        &self,
        scope: &Scope,
        _: Option<&ScopeKey>,
        name: &str,
        value: &SecretString,
    ) -> Result<(), StoreError> {
        let mut w = self.world();
        let fault = w.write_faults.remove(name);
        w.log.push(format!("put {name}"));
        if fault == Some(WriteFault::Fails) {
            return Err(StoreError {
                kind: StoreErrorKind::Forbidden,
                message: format!("writing {name}: AccessDenied"),
                uncertain: false,
                status: Some(400),
            });
        }
        if fault != Some(WriteFault::LostUnanswered) {
            let now = at(w.now);
            w.secrets.insert(
                (scope.clone(), name.to_owned()),
                (value.expose_secret().to_owned(), now),
            );
        }
        match fault {
            Some(_) => Err(unanswered(name)),
            None => Ok(()),
        }
    }
    async fn read(&self, scope: &Scope, name: &str) -> Result<Option<SecretString>, StoreError> {
        let w = self.0.borrow();
        Ok(w.secrets
            .get(&(scope.clone(), name.to_owned()))
            .map(|(v, _)| SecretString::from(v.clone())))
    }
}

fn no_workflows() -> GhError {
    GhError {
        kind: GhErrorKind::NotFound,
        message: "no workflows here".into(),
        uncertain: false,
        status: Some(404),
    }
}

impl Workflows for Mem {
    async fn default_branch(&self, _: &str) -> Result<String, GhError> {
        Err(no_workflows())
    }
    async fn dispatch(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: &[(&str, &str)],
    ) -> Result<Dispatched, GhError> {
        Err(no_workflows())
    }
    async fn recent_runs(
        &self,
        _: &str,
        _: &str,
        _: DateTime<Utc>,
    ) -> Result<Vec<RunInfo>, GhError> {
        Err(no_workflows())
    }
    async fn run(&self, _: &str, _: u64) -> Result<RunInfo, GhError> {
        Err(no_workflows())
    }
}

impl Clock for Mem {
    fn now(&self) -> DateTime<Utc> {
        at(self.0.borrow().now)
    }
    async fn sleep(&self, duration: std::time::Duration) {
        self.world().now += (duration.as_millis() as i64 + 999) / 1000;
    }
}

/// Where the core's lines go in a test: kept, to be read.
#[derive(Debug, Default)]
pub struct Lines(pub RefCell<Vec<String>>);

impl Events for Lines {
    fn mask(&self, _: &SecretString) {}
    fn info(&self, text: &str) {
        self.0.borrow_mut().push(text.into());
    }
    fn warn(&self, text: &str) {
        self.0.borrow_mut().push(format!("warning: {text}"));
    }
    fn group(&self, _: &str) {}
    fn end_group(&self) {}
}

/// The settings a test run works with.
pub struct Settings {
    pub lease: LeaseSettings,
    pub opts: Options,
    pub stop: Stop,
    pub lines: Lines,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            lease: LeaseSettings {
                run_id: "run-1".into(),
                settle: std::time::Duration::from_secs(1),
                ttl: Duration::minutes(45),
                github: None,
                call_timeout: Duration::seconds(30),
            },
            opts: Options::default(),
            stop: Stop::default(),
            lines: Lines::default(),
        }
    }
}

impl Settings {
    pub fn ctx<'a>(&'a self, mem: &'a Mem) -> Ctx<'a, Mem> {
        Ctx {
            ports: mem,
            events: &self.lines,
            verify: VerifySettings {
                timeout: std::time::Duration::from_secs(60),
                poll: std::time::Duration::from_secs(5),
            },
            step_key: None,
            opts: &self.opts,
            dry_run: false,
            lease: &self.lease,
            stop: &self.stop,
        }
    }
}

/// Runs a future of the core to its end (the in-memory ports never wait on anything real).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
        .block_on(f)
}
