//! The core's ports over the world, with a fault injected at any call and the runs
//! interleaved at every one.

#[allow(unused_imports)]
use crate::*;

/// Gives the scheduler a turn: every port call is a point where another run may go first.
pub(crate) struct YieldOnce(pub(crate) bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
}

pub(crate) struct Sleep {
    pub(crate) w: Rc<RefCell<World>>,
    pub(crate) run: usize,
    pub(crate) until: DateTime<Utc>,
}

impl Future for Sleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        let mut w = self.w.borrow_mut();
        if w.now >= self.until {
            w.sleeping[self.run] = None;
            Poll::Ready(())
        } else {
            w.sleeping[self.run] = Some(self.until);
            Poll::Pending
        }
    }
}

/// One run's view of the world: every port, and its own clock.
#[derive(Clone)]
pub(crate) struct Sim {
    pub(crate) w: Rc<RefCell<World>>,
    pub(crate) run: usize,
}

pub(crate) fn iam_error(op: &str) -> IamError {
    IamError {
        kind: IamErrorKind::Other,
        message: format!("injected fault in {op}"),
    }
}

pub(crate) fn gh_error(op: &str, kind: Kind) -> GhError {
    GhError {
        kind: GhErrorKind::Unavailable,
        message: format!("injected fault in {op}"),
        uncertain: kind != Kind::Error,
        status: None,
    }
}

impl Sim {
    /// The scheduler's turn, then the fault decision for this call.
    pub(crate) async fn gate(&self, op: &'static str) -> Option<Kind> {
        YieldOnce(false).await;
        let mut w = self.w.borrow_mut();
        let n = w.calls[self.run];
        if self.run == 0 && w.quarantine_at == Some(n) && !w.quarantined {
            w.quarantined = true;
            if let Some(t) = &mut w.trace {
                t.push(format!("AWS quarantines the user before run 0 call {n}"));
            }
        }
        if let Some(f) = w.forge
            && !w.forged
            && f.run == self.run
            && f.call == n
        {
            w.forged = true;
            w.forge_tags(f.what);
            if let Some(t) = &mut w.trace {
                t.push(format!(
                    "adversary before run {} call {n}: forgery {}",
                    self.run, f.what
                ));
            }
        }
        w.calls[self.run] += 1;
        let mut hit = w
            .broken
            .iter()
            .find(|(r, o, _)| *r == self.run && *o == op)
            .map(|b| b.2);
        if hit.is_none()
            && let Some(f) = w
                .faults
                .iter()
                .find(|f| f.run == self.run && f.call == n)
                .copied()
        {
            hit = Some(f.kind);
            w.fired += 1;
            if f.persistent {
                w.broken.push((self.run, op, f.kind));
            }
        }
        let now = w.now;
        if let Some(t) = &mut w.trace {
            t.push(format!(
                "{} run {} call {n}: {op}{}",
                now.format("%H:%M:%S"),
                self.run,
                hit.map(|k| format!("  <-- {k:?}")).unwrap_or_default()
            ));
        }
        hit
    }

    /// A call that takes effect unless refused or timed out; a lost answer still takes effect.
    pub(crate) async fn call<T>(
        &self,
        op: &'static str,
        apply: impl FnOnce(&mut World) -> T,
    ) -> Result<T, Kind> {
        match self.gate(op).await {
            Some(k @ (Kind::Error | Kind::Timeout)) => Err(k),
            Some(Kind::CrashBefore) => {
                self.w.borrow_mut().crashed[self.run] = true;
                std::future::pending().await
            }
            Some(Kind::CrashAfter) => {
                {
                    let mut w = self.w.borrow_mut();
                    apply(&mut w);
                    w.crashed[self.run] = true;
                }
                std::future::pending().await
            }
            fault => {
                let t = apply(&mut self.w.borrow_mut());
                match fault {
                    Some(Kind::Lost) => Err(Kind::Lost),
                    _ => Ok(t),
                }
            }
        }
    }

    pub(crate) async fn iam<T>(
        &self,
        op: &'static str,
        apply: impl FnOnce(&mut World) -> Result<T, IamError>,
    ) -> Result<T, IamError> {
        self.call(op, apply).await.map_err(|_| iam_error(op))?
    }

    pub(crate) async fn gh<T>(
        &self,
        op: &'static str,
        apply: impl FnOnce(&mut World) -> Result<T, GhError>,
    ) -> Result<T, GhError> {
        self.call(op, apply).await.map_err(|k| gh_error(op, k))?
    }
}

pub(crate) fn no_such_key(id: &str) -> IamError {
    IamError {
        kind: IamErrorKind::NoSuchKey,
        message: format!("no such key {id}"),
    }
}

impl Iam for Sim {
    async fn list_keys(&self, _: &str) -> Result<Vec<KeyInfo>, IamError> {
        self.iam("iam:ListAccessKeys", |w| {
            Ok(w.keys
                .iter()
                .map(|k| KeyInfo {
                    id: k.id.clone(),
                    status: if k.active {
                        KeyStatus::Active
                    } else {
                        KeyStatus::Inactive
                    },
                    created: k.created,
                })
                .collect())
        })
        .await
    }
    async fn create_key(&self, _: &str) -> Result<NewKey, IamError> {
        self.iam("iam:CreateAccessKey", |w| {
            if w.keys.len() >= 2 {
                return Err(IamError {
                    kind: IamErrorKind::LimitExceeded,
                    message: "Cannot exceed quota for AccessKeysPerUser: 2".into(),
                });
            }
            let created = w.now + w.aws_skew;
            let id = w.add_key(true, created);
            Ok(NewKey {
                secret: SecretString::from(secret_of(&id)),
                id,
                created: secs(created),
            })
        })
        .await
    }
    async fn set_inactive(&self, _: &str, key_id: &str) -> Result<(), IamError> {
        self.iam("iam:UpdateAccessKey", |w| {
            match w.keys.iter_mut().find(|k| k.id == key_id) {
                Some(k) => {
                    k.active = false;
                    Ok(())
                }
                None => Err(no_such_key(key_id)),
            }
        })
        .await
    }
    async fn delete_key(&self, _: &str, key_id: &str) -> Result<(), IamError> {
        self.iam("iam:DeleteAccessKey", |w| {
            let before = w.keys.len();
            if w.keys.iter().any(|k| k.id == key_id && k.active) {
                w.deleted_active.push(key_id.to_owned());
            }
            w.keys.retain(|k| k.id != key_id);
            if w.keys.len() == before {
                return Err(no_such_key(key_id));
            }
            w.deleted.insert(key_id.to_owned());
            Ok(())
        })
        .await
    }
    async fn last_used(&self, key_id: &str) -> Result<LastUse, IamError> {
        let key_id = key_id.to_owned();
        self.iam("iam:GetAccessKeyLastUsed", move |w| {
            // A key a person uses outside the manifest is in use all along.
            let outside = (w.outside.as_deref() == Some(key_id.as_str()))
                .then(|| w.now - Duration::minutes(5));
            Ok(
                match outside.or_else(|| w.used.get(&key_id).copied()).as_ref() {
                    Some(d) => LastUse {
                        date: Some(*d),
                        service: "sts".into(),
                        region: "us-east-1".into(),
                    },
                    None => LastUse {
                        date: None,
                        service: "N/A".into(),
                        region: "N/A".into(),
                    },
                },
            )
        })
        .await
    }
    async fn attached_policies(&self, _: &str) -> Result<Vec<String>, IamError> {
        self.iam("iam:ListAttachedUserPolicies", |w| {
            Ok(if w.quarantined {
                vec!["AWSCompromisedKeyQuarantineV3".to_owned()]
            } else {
                Vec::new()
            })
        })
        .await
    }
    async fn tags(&self, _: &str) -> Result<Vec<(String, String)>, IamError> {
        self.iam("iam:ListUserTags", |w| {
            Ok(w.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        })
        .await
    }
    async fn set_tag(&self, _: &str, key: &str, value: &str) -> Result<(), IamError> {
        self.iam("iam:TagUser", |w| {
            w.tags.insert(key.to_owned(), value.to_owned());
            Ok(())
        })
        .await
    }
    async fn remove_tag(&self, _: &str, key: &str) -> Result<(), IamError> {
        self.iam("iam:UntagUser", |w| {
            w.tags.remove(key);
            Ok(())
        })
        .await
    }
    async fn prove_key(&self, key: &NewKey) -> Result<Caller, IamError> {
        let id = key.id.clone();
        let secret = key.secret.expose_secret().to_owned();
        self.iam("sts:GetCallerIdentity", move |w| {
            if w.working(&id) && secret == secret_of(&id) {
                let now = w.now;
                w.used.insert(id.clone(), now);
                Ok(Caller {
                    account: "123456789012".into(),
                    arn: format!("arn:aws:iam::123456789012:user/{USER}"),
                })
            } else {
                Err(IamError {
                    kind: IamErrorKind::Credentials,
                    message: "InvalidClientTokenId".into(),
                })
            }
        })
        .await
    }
}

impl SecretStore for Sim {
    async fn public_key(&self, _: &Scope) -> Result<ScopeKey, StoreError> {
        self.gh("GET public-key", |w| Ok(w.scope_key.clone()))
            .await
            .map_err(StoreError::from)
    }
    async fn updated_at(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.gh("GET secret", |w| {
            Ok(w.secrets
                .get(&(scope.clone(), name.to_owned()))
                .map(|(_, t)| *t))
        })
        .await
        .map_err(StoreError::from)
    }
    async fn read(&self, scope: &Scope, name: &str) -> Result<Option<SecretString>, StoreError> {
        self.gh("read secret", |w| {
            Ok(w.secrets
                .get(&(scope.clone(), name.to_owned()))
                .map(|(v, _)| SecretString::from(v.clone())))
        })
        .await
        .map_err(StoreError::from)
    }
    async fn put(
        &self,
        scope: &Scope,
        _: Option<&ScopeKey>,
        name: &str,
        value: &SecretString,
    ) -> Result<(), StoreError> {
        let value = value.expose_secret().to_owned();
        self.gh("PUT secret", |w| {
            let at = w.gh_now();
            w.secrets
                .insert((scope.clone(), name.to_owned()), (value, at));
            Ok(())
        })
        .await
        .map_err(StoreError::from)
    }
    /// A store that keeps the pair together (Vault's KV v2, an S3 object): both fields in one
    /// write, one stamp. A conflict the adapter could not settle (check-and-set, `If-Match`) is
    /// an error of this call.
    async fn put_pair(
        &self,
        scope: &Scope,
        names: [&str; 2],
        values: [&SecretString; 2],
    ) -> Result<(), StoreError> {
        let values = values.map(|v| v.expose_secret().to_owned());
        self.gh("PUT pair", |w| {
            let at = w.gh_now();
            for (name, value) in names.iter().zip(values) {
                w.secrets
                    .insert((scope.clone(), (*name).to_owned()), (value, at));
            }
            Ok(())
        })
        .await
        .map_err(StoreError::from)
    }
}

impl Workflows for Sim {
    async fn default_branch(&self, _: &str) -> Result<String, GhError> {
        self.gh("GET repository", |_| Ok("main".to_owned())).await
    }
    async fn dispatch(
        &self,
        repository: &str,
        _: &str,
        _: &str,
        inputs: &[(&str, &str)],
    ) -> Result<Dispatched, GhError> {
        let input = |n: &str| {
            inputs
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
                .unwrap_or_default()
        };
        let (expected, marker) = (input("expected-access-key-id"), input("rotation-id"));
        self.gh("POST dispatches", |w| {
            let id = w.wf_runs.len() as u64 + 1;
            let now = w.gh_now();
            w.wf_runs.push(WfRun {
                id,
                repo: repository.to_owned(),
                title: format!("verify {marker}"),
                expected,
                created: now,
                done_at: w.now + Duration::seconds(30),
            });
            Ok(Dispatched::Run {
                id,
                html_url: format!("https://github.test/runs/{id}"),
            })
        })
        .await
    }
    async fn recent_runs(
        &self,
        repository: &str,
        _: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<RunInfo>, GhError> {
        self.gh("GET runs", |w| {
            Ok(w.wf_runs
                .iter()
                .rev()
                .filter(|r| r.repo == repository && r.created >= since - Duration::minutes(10))
                .map(|r| run_info(w, r))
                .collect())
        })
        .await
    }
    async fn run(&self, _: &str, id: u64) -> Result<RunInfo, GhError> {
        self.gh("GET run", |w| {
            let r = w
                .wf_runs
                .iter()
                .find(|r| r.id == id)
                .expect("a dispatched run");
            Ok(run_info(w, r))
        })
        .await
    }
}

/// A verification run succeeds when the secrets its repository holds are a working pair of
/// the expected key (evaluated when it completes).
pub(crate) fn run_info(w: &World, r: &WfRun) -> RunInfo {
    let done = w.now >= r.done_at;
    let ok = || {
        let (id, secret) = w.holds(&Consumer {
            pull_requests: true,
            scope: Scope::Repository(r.repo.clone()),
            secrets: SecretNames::default(),
        });
        !w.verify_breaks
            && id.as_deref() == Some(r.expected.as_str())
            && secret == id
            && w.working(&r.expected)
    };
    RunInfo {
        id: r.id,
        html_url: format!("https://github.test/runs/{}", r.id),
        status: if done { "completed" } else { "in_progress" }.into(),
        conclusion: done.then(|| if ok() { "success" } else { "failure" }.to_owned()),
        display_title: r.title.clone(),
    }
}

impl Clock for Sim {
    fn now(&self) -> DateTime<Utc> {
        let w = self.w.borrow();
        w.now + w.runner_skew[self.run]
    }
    async fn sleep(&self, d: StdDuration) {
        let until = self.w.borrow().now + Duration::from_std(d).unwrap();
        Sleep {
            w: self.w.clone(),
            run: self.run,
            until,
        }
        .await
    }
}

impl Events for Sim {
    fn mask(&self, _: &SecretString) {}
    fn info(&self, _: &str) {}
    fn warn(&self, _: &str) {}
    fn group(&self, _: &str) {}
    fn end_group(&self) {}
}
