//! What one history is: where the user starts, the runs and their commands, the faults, and
//! the scenario's manifest user; its `SIM_REPLAY` form.

#[allow(unused_imports)]
use crate::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Refused: nothing happened, and the caller knows it.
    Error,
    /// No answer: nothing happened, and the caller cannot know.
    Timeout,
    /// The call took effect, but its answer was lost.
    Lost,
    /// The process is gone (SIGKILL, a lost runner) before the call reached anyone: its lease
    /// is left to expire.
    CrashBefore,
    /// The process is gone right after the call took effect.
    CrashAfter,
}

/// The forged-tag adversary: before call `call` of run `run`, forgery `what`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Forge {
    pub(crate) run: usize,
    pub(crate) call: usize,
    pub(crate) what: usize,
}

pub(crate) const CRASHES: [Kind; 2] = [Kind::CrashBefore, Kind::CrashAfter];

pub(crate) const KINDS: [Kind; 3] = [Kind::Error, Kind::Timeout, Kind::Lost];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fault {
    pub(crate) run: usize,
    pub(crate) call: usize,
    pub(crate) kind: Kind,
    pub(crate) persistent: bool,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            Kind::Error => "error",
            Kind::Timeout => "timeout",
            Kind::Lost => "lost",
            Kind::CrashBefore => "crash-before",
            Kind::CrashAfter => "crash-after",
        };
        let how = if self.persistent { "always" } else { "once" };
        write!(f, "{}:{}:{kind}:{how}", self.run, self.call)
    }
}

impl Fault {
    pub(crate) fn parse(s: &str) -> Self {
        let p: Vec<&str> = s.split(':').collect();
        Fault {
            run: p[0].parse().unwrap(),
            call: p[1].parse().unwrap(),
            kind: match p[2] {
                "error" => Kind::Error,
                "timeout" => Kind::Timeout,
                "crash-before" => Kind::CrashBefore,
                "crash-after" => Kind::CrashAfter,
                _ => Kind::Lost,
            },
            persistent: p[3] == "always",
        }
    }
}

// ---- scenarios --------------------------------------------------------------------------------

pub(crate) fn web() -> Scope {
    Scope::Repository("acme/web".into())
}

pub(crate) fn user_spec(verify: bool) -> UserSpec {
    let consumer = |scope: Scope| Consumer {
        pull_requests: true,
        scope,
        secrets: SecretNames::default(),
    };
    UserSpec {
        on_exposure: Default::default(),
        name: USER.into(),
        max_age_days: 90,
        deactivate_after_hours: 24,
        delete_after_days: 7,
        consumers: vec![
            consumer(web()),
            consumer(Scope::Environment {
                repository: "acme/web".into(),
                environment: "production".into(),
            }),
            consumer(Scope::Repository("acme/api".into())),
            // A readable store (Parameter Store): its old values are known to every run.
            Consumer {
                pull_requests: true,
                scope: Scope::ParameterStore { region: None },
                secrets: SecretNames {
                    access_key_id: "/ci/key-id".into(),
                    secret_access_key: "/ci/secret".into(),
                },
            },
            // A readable store that keeps the pair together (Vault's KV v2, check-and-set).
            consumer(Scope::Vault {
                mount: "secret".into(),
                path: "ci/deployer".into(),
                address: None,
                namespace: None,
            }),
            // App config in S3 (CONTRACT §18): the pair in one conditional put. A conflict the
            // adapter could not settle (a second writer) is a refused write: the call fails
            // with nothing written, one of the faults tried at every call.
            Consumer {
                pull_requests: true,
                scope: Scope::S3 {
                    bucket: "acme-config".into(),
                    key: "web/prod.json".into(),
                    format: aws_key_rotator::manifest::DocumentFormat::Json,
                    region: None,
                },
                secrets: SecretNames {
                    access_key_id: "aws.key_id".into(),
                    secret_access_key: "aws.secret".into(),
                },
            },
        ],
        verify: if verify {
            vec![VerifyWorkflow {
                repository: "acme/web".into(),
                workflow: "verify-aws-credentials.yml".into(),
                git_ref: None,
            }]
        } else {
            Vec::new()
        },
        external: Vec::new(),
        origin: "sim.yml:3:5".into(),
        on_role: Vec::new(),
        migrate: aws_key_rotator::manifest::Migration::defaults(USER),
        account_role: None,
    }
}

/// The scenario's user for `h`: every consumer on the role when it starts moved.
pub(crate) fn spec_of(h: &History) -> UserSpec {
    let mut spec = user_spec(h.verify);
    if h.start.moved() {
        spec.on_role = std::mem::take(&mut spec.consumers);
    }
    if h.revoke {
        spec.on_exposure = aws_key_rotator::manifest::OnExposure::Revoke;
    }
    spec
}

/// Where a user starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Start {
    /// No key yet.
    Empty,
    /// One key, 100 days old, in every consumer.
    Aged,
    /// Rotated two days ago and verified: the old key awaits deactivation.
    Rotated,
    /// The old key was deactivated eight days ago: it awaits deletion.
    Retired,
    /// Every consumer assumes the role; the user's one key (100 days old) is still Active and
    /// its retirement not recorded.
    Moved,
    /// Moved, and the retirement recorded two days ago: the key awaits deactivation.
    MovedRetiring,
    /// Moved, and the key deactivated eight days ago: it awaits deletion.
    MovedRetired,
    /// One key, 100 days old, in every consumer; and a second Active key a person made two
    /// days ago and uses outside the manifest (no journal).
    Outside,
}

const STARTS: [Start; 8] = [
    Start::Outside,
    Start::Empty,
    Start::Aged,
    Start::Rotated,
    Start::Retired,
    Start::Moved,
    Start::MovedRetiring,
    Start::MovedRetired,
];

impl Start {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Start::Empty => "empty",
            Start::Aged => "aged",
            Start::Rotated => "rotated",
            Start::Retired => "retired",
            Start::Moved => "moved",
            Start::MovedRetiring => "moved-retiring",
            Start::MovedRetired => "moved-retired",
            Start::Outside => "outside",
        }
    }
    pub(crate) fn parse(s: &str) -> Self {
        STARTS.into_iter().find(|x| x.name() == s).unwrap()
    }
    pub(crate) fn moved(self) -> bool {
        matches!(
            self,
            Start::Moved | Start::MovedRetiring | Start::MovedRetired
        )
    }
}

/// One history: where it starts, who runs what, the faults and the seed of the schedule.
#[derive(Clone, Debug)]
pub(crate) struct History {
    pub(crate) start: Start,
    /// The step runs with the key the `acme/web` repository secrets hold (self-rotation);
    /// otherwise with a dedicated identity, so the old values are never known.
    pub(crate) self_rotating: bool,
    pub(crate) verify: bool,
    pub(crate) verify_breaks: bool,
    pub(crate) commands: Vec<(Command, bool)>,
    pub(crate) faults: Vec<Fault>,
    pub(crate) seed: u64,
    pub(crate) skew: bool,
    pub(crate) forge: Option<Forge>,
    /// AWS quarantines the user before this call of run 0 (CONTRACT §17).
    pub(crate) quarantine: Option<usize>,
    /// The user's manifest entry says `on-exposure: revoke`.
    pub(crate) revoke: bool,
}

pub(crate) fn command_name(c: Command) -> &'static str {
    match c {
        Command::Status => "status",
        Command::Rotate => "rotate",
        Command::Deactivate => "deactivate",
        Command::Delete => "delete",
    }
}

impl fmt::Display for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cmds: Vec<String> = self
            .commands
            .iter()
            .map(|(c, force)| format!("{}{}", command_name(*c), if *force { "!" } else { "" }))
            .collect();
        let faults: Vec<String> = self.faults.iter().map(ToString::to_string).collect();
        write!(
            f,
            "start={} self={} verify={} breaks={} cmds={} faults={} seed={} skew={} forge={} quarantine={} revoke={}",
            self.start.name(),
            self.self_rotating,
            self.verify,
            self.verify_breaks,
            cmds.join(","),
            if faults.is_empty() {
                "-".into()
            } else {
                faults.join(",")
            },
            self.seed,
            self.skew,
            self.forge
                .map_or("-".into(), |f| format!("{}:{}:{}", f.run, f.call, f.what)),
            self.quarantine.map_or("-".into(), |c| c.to_string()),
            self.revoke
        )
    }
}

impl History {
    /// Whether a run of the history is killed.
    pub(crate) fn crashes(&self) -> bool {
        self.faults.iter().any(|f| CRASHES.contains(&f.kind))
    }

    pub(crate) fn parse(s: &str) -> Self {
        let f: BTreeMap<&str, &str> = s
            .split_whitespace()
            .filter_map(|w| w.split_once('='))
            .collect();
        let commands = f["cmds"]
            .split(',')
            .map(|c| {
                let force = c.ends_with('!');
                let c = match c.trim_end_matches('!') {
                    "status" => Command::Status,
                    "rotate" => Command::Rotate,
                    "deactivate" => Command::Deactivate,
                    _ => Command::Delete,
                };
                (c, force)
            })
            .collect();
        History {
            start: Start::parse(f["start"]),
            self_rotating: f["self"] == "true",
            verify: f["verify"] == "true",
            verify_breaks: f["breaks"] == "true",
            commands,
            faults: if f["faults"] == "-" {
                Vec::new()
            } else {
                f["faults"].split(',').map(Fault::parse).collect()
            },
            seed: f["seed"].parse().unwrap(),
            skew: f["skew"] == "true",
            revoke: f.get("revoke") == Some(&"true"),
            quarantine: f
                .get("quarantine")
                .filter(|v| **v != "-")
                .map(|v| v.parse().unwrap()),
            forge: f.get("forge").filter(|v| **v != "-").map(|v| {
                let p: Vec<usize> = v.split(':').map(|x| x.parse().unwrap()).collect();
                Forge {
                    run: p[0],
                    call: p[1],
                    what: p[2],
                }
            }),
        }
    }
}

pub(crate) fn setup(h: &History) -> World {
    let mut w = World::new(h.commands.len());
    let spec = spec_of(h);
    let now = w.now;
    let mut rng = Rng(h.seed ^ 0x5EED);
    if h.skew {
        let mut skew = || Duration::seconds(rng.below(601) as i64 - 300);
        w.gh_skew = skew();
        w.aws_skew = skew();
        for s in w.runner_skew.iter_mut() {
            *s = skew();
        }
    }
    // A moved user's consumers still have the key in their stores; they no longer read it.
    let all = |w: &mut World, key: &str, at: DateTime<Utc>| {
        for c in spec.consumers.iter().chain(&spec.on_role) {
            w.hold(c, key, at);
        }
    };
    match h.start {
        Start::Empty => {}
        Start::Aged => {
            let k = w.add_key(true, now - Duration::days(100));
            all(&mut w, &k, now - Duration::days(100));
        }
        Start::Outside => {
            let k = w.add_key(true, now - Duration::days(100));
            all(&mut w, &k, now - Duration::days(100));
            let theirs = w.add_key(true, now - Duration::days(2));
            w.used.insert(theirs.clone(), now - Duration::hours(1));
            w.outside = Some(theirs);
        }
        Start::Rotated | Start::Retired => {
            let old = w.add_key(h.start == Start::Rotated, now - Duration::days(100));
            let new = w.add_key(true, now - Duration::days(9));
            all(&mut w, &new, now - Duration::days(9));
            let _ = old;
            let mut j = Journal::new(
                Phase::Verified,
                &new,
                &format!("{new}-1"),
                now - Duration::days(9),
            );
            j.held = Some(now - Duration::days(9));
            if h.start == Start::Retired {
                j = j.moved(Phase::Deactivated, now - Duration::days(8));
            }
            w.tags.insert(JOURNAL_TAG.into(), j.value());
        }
        Start::Moved | Start::MovedRetiring | Start::MovedRetired => {
            let retired = h.start == Start::MovedRetired;
            let k = w.add_key(!retired, now - Duration::days(100));
            all(&mut w, &k, now - Duration::days(100));
            if h.start != Start::Moved {
                let mut j =
                    Journal::new(Phase::Moved, &k, &format!("{k}-1"), now - Duration::days(9));
                if retired {
                    j = j.moved(Phase::Deactivated, now - Duration::days(8));
                } else {
                    j.at = now - Duration::days(2);
                    j.held = Some(j.at);
                }
                w.tags.insert(JOURNAL_TAG.into(), j.value());
            }
        }
    }
    w.verify_breaks = h.verify_breaks;
    w.faults = h.faults.clone();
    w.forge = h.forge;
    w.quarantine_at = h.quarantine;
    w
}
