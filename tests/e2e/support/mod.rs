//! Test harness: one moto server per test binary (IAM auth mode, Inactive keys refused),
//! a fake GitHub per test, and a runner that starts the real binary the way the runner does.
#![allow(dead_code)]

pub mod bao;
pub mod fake_cloudtrail;
pub mod fake_github;
pub mod fixtures;

use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
#[allow(unused_imports)]
pub use fake_github::{
    FakeGitHub, Fault, RunMode, ScopeId, WorkflowSpec, dependabot, environment, org,
    org_dependabot, repo,
};

/// One multi-threaded runtime serves every fake and every SDK call of a test binary.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python with moto and PyNaCl: $AWS_KEY_ROTATOR_TEST_PYTHON, else ./.venv (made by
/// scripts/setup-test-env), else python3 on PATH.
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("AWS_KEY_ROTATOR_TEST_PYTHON") {
        return p.into();
    }
    let venv = repo_root().join(".venv/bin/python");
    if venv.exists() {
        venv
    } else {
        "python3".into()
    }
}

struct Moto {
    url: String,
    _child: Child,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| start_moto(false))
}

/// A moto that carries AWS's managed policies (the quarantine policy among them), enforced in
/// auth mode. Its resets take about half a second longer, so only the tests that need those
/// policies use it.
fn moto_with_managed_policies() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| start_moto(true))
}

fn start_moto(managed_policies: bool) -> Moto {
    let port = free_port();
    let mut command = Command::new(python());
    command
        .arg(repo_root().join("tests/e2e/support/moto_server.py"))
        .arg(port.to_string())
        .env("INITIAL_NO_AUTH_ACTION_COUNT", "3");
    if managed_policies {
        command.env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true");
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start moto with {:?}: {e}; run scripts/setup-test-env",
                python()
            )
        });
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client
        .get(format!("{url}/moto-api/data.json"))
        .send()
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "moto did not start on {url}; is moto[server] installed?"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Moto { url, _child: child }
}

/// Tests share one moto: they run one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Clone)]
pub struct Key {
    pub id: String,
    pub secret: String,
}

/// Everything that could change: the user's keys and tags, and every secret GitHub holds.
#[derive(Debug, PartialEq, Eq)]
pub struct World {
    pub keys: Vec<(String, String)>,
    pub secrets: std::collections::BTreeMap<(ScopeId, String), String>,
    pub tags: std::collections::BTreeMap<String, String>,
}

impl TestEnv {
    pub fn world(&self, user: &str) -> World {
        World {
            keys: self.keys(user),
            secrets: self.github.all_secrets(),
            tags: self.tags(user),
        }
    }

    /// Runs `run`, which must exit `code` and leave `user`'s keys, its tags and every secret
    /// GitHub holds as they were (a refusal, or nothing to do, changes nothing).
    pub fn changes_nothing(&self, user: &str, code: i32, run: impl FnOnce() -> Run) -> Run {
        let before = self.world(user);
        let run = run();
        assert_eq!(run.code, code, "{}", run.all());
        assert_eq!(self.world(user), before, "changed something: {}", run.all());
        run
    }
}

/// IAM policy allowing exactly these actions on every resource (moto evaluates actions but
/// not resource ARNs, so the shipped policy's `arn:aws:iam::*:user/${aws:username}` would
/// deny everything here; the actions are what this proves).
pub fn policy(actions: &[&str]) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]
    })
    .to_string()
}

/// The actions the tool always calls, read from the shipped policy (every statement but the
/// optional one for the AWS stores).
pub fn shipped_actions() -> Vec<String> {
    policy_actions(|sid| !sid.starts_with("Optional"))
}

/// The shipped policy's actions for the AWS stores (Secrets Manager, Parameter Store).
pub fn aws_store_actions() -> Vec<String> {
    policy_actions(|sid| sid.starts_with("OptionalAwsStores"))
}

/// The workflow commands the Actions runner would run from `out` (its stdout or stderr), as
/// the runner reads them: lines end at LF, CR LF or a lone CR; leading whitespace is trimmed;
/// `::stop-commands::TOKEN` stops every command until `::TOKEN::`.
pub fn runner_commands(out: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut stopped: Option<String> = None;
    for line in out.split(['\n', '\r']) {
        let line = line.trim_start();
        let Some(rest) = line.strip_prefix("::") else {
            continue;
        };
        if let Some(token) = &stopped {
            if rest == format!("{token}::") {
                stopped = None;
            }
            continue;
        }
        if let Some(token) = rest.strip_prefix("stop-commands::") {
            stopped = Some(token.to_owned());
            continue;
        }
        commands.push(rest.to_owned());
    }
    commands
}

/// The actions of the shipped policy of the identity that runs `migrate`
/// (docs/migrate-policy.json).
pub fn migrate_policy_actions() -> Vec<String> {
    file_policy_actions("docs/migrate-policy.json", |_| true)
}

fn policy_actions(keep: impl Fn(&str) -> bool) -> Vec<String> {
    file_policy_actions("docs/iam-policy.json", keep)
}

fn file_policy_actions(file: &str, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join(file)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    for st in v["Statement"].as_array().unwrap() {
        if !keep(st["Sid"].as_str().unwrap_or_default()) {
            continue;
        }
        for a in st["Action"].as_array().unwrap() {
            out.push(a.as_str().unwrap().to_owned());
        }
    }
    out
}

/// What one run of the binary left behind.
#[derive(Debug)]
/// A started binary: signal it, kill it, or wait for it.
pub struct Spawned {
    pub child: Child,
    files: tempfile::TempDir,
    stdout: std::thread::JoinHandle<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Spawned {
    /// Sends `signal` (libc::SIGINT, SIGTERM, SIGKILL) to the process.
    pub fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on a child this test started and has not reaped.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }

    /// Waits for the process and collects what it wrote (a killed one exits -1), and adds it
    /// to `env`'s leak scan.
    pub fn wait(mut self, env: &TestEnv) -> Run {
        let status = self.child.wait().unwrap();
        let run = Run {
            code: status.code().unwrap_or(-1),
            stdout: self.stdout.join().unwrap(),
            stderr: self.stderr.join().unwrap(),
            outputs: std::fs::read_to_string(self.files.path().join("output")).unwrap(),
            summary: std::fs::read_to_string(self.files.path().join("summary")).unwrap(),
        };
        env.record(&run);
        run
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub outputs: String,
    pub summary: String,
}

impl Run {
    pub fn output(&self, name: &str) -> Option<String> {
        self.outputs
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")).map(str::to_owned))
    }
    /// Everything a person or a later step could see (mask commands are consumed by the runner,
    /// which reads workflow commands on stdout and stderr alike: with `--json` they go to
    /// stderr).
    pub fn visible(&self) -> String {
        let unmasked = |out: &str| {
            out.lines()
                .filter(|l| !l.starts_with("::add-mask::"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        format!(
            "{}\n{}\n{}\n{}",
            unmasked(&self.stdout),
            unmasked(&self.stderr),
            self.outputs,
            self.summary
        )
    }
    pub fn all(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}",
            self.stdout, self.stderr, self.outputs, self.summary
        )
    }
}

/// One test's world: a fresh moto account, a fresh fake GitHub, a workspace.
pub struct TestEnv {
    _guard: MutexGuard<'static, ()>,
    pub moto_url: String,
    pub github: FakeGitHub,
    pub admin: Key,
    pub workspace: tempfile::TempDir,
    /// Every secret value the test knows of; none may appear in any visible output.
    secrets: Mutex<Vec<String>>,
    runs: Mutex<Vec<String>>,
}

impl TestEnv {
    pub fn new() -> Self {
        Self::with_github(FakeGitHub::start)
    }

    /// With GitHub Enterprise Server: the API under `/api/v3` only.
    pub fn ghes() -> Self {
        Self::with_github(FakeGitHub::start_ghes)
    }

    /// Against the moto that carries AWS's managed policies (CONTRACT §17's quarantine).
    pub fn with_aws_managed_policies() -> Self {
        Self::with(FakeGitHub::start, moto_with_managed_policies())
    }

    fn with_github(start: fn(Option<String>) -> FakeGitHub) -> Self {
        Self::with(start, moto())
    }

    fn with(start: fn(Option<String>) -> FakeGitHub, moto: &'static Moto) -> Self {
        let guard = serial();
        fake_cloudtrail::fake().reset();
        let http = reqwest::blocking::Client::new();
        http.post(format!("{}/moto-api/reset", moto.url))
            .send()
            .unwrap();
        http.post(format!("{}/moto-api/reset-auth", moto.url))
            .header("content-type", "text/plain")
            .body("3")
            .send()
            .unwrap();
        // The three calls moto lets through unauthenticated make the admin.
        let anon = iam_client(&moto.url, "AKIAANONYMOUS0000000", "anonymous");
        runtime().block_on(async {
            anon.create_user().user_name("admin").send().await.unwrap();
            anon.put_user_policy()
                .user_name("admin")
                .policy_name("all")
                .policy_document(policy(&["*"]))
                .send()
                .await
                .unwrap();
        });
        let admin = new_key(&anon, "admin");

        Self {
            _guard: guard,
            moto_url: moto.url.clone(),
            github: start(Some(moto.url.clone())),
            admin: admin.clone(),
            workspace: tempfile::tempdir().unwrap(),
            secrets: Mutex::new(vec![
                admin.secret.clone(),
                fake_github::TOKEN.into(),
                fake_github::READ_ONLY_TOKEN.into(),
            ]),
            runs: Mutex::new(Vec::new()),
        }
    }

    /// S3 on moto as the admin (path-style: moto serves no bucket hosts).
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&sdk_config(
            &self.moto_url,
            &self.admin.id,
            &self.admin.secret,
        ))
        .force_path_style(true)
        .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// KMS on moto as the admin.
    pub fn kms(&self) -> aws_sdk_kms::Client {
        aws_sdk_kms::Client::new(&sdk_config(
            &self.moto_url,
            &self.admin.id,
            &self.admin.secret,
        ))
    }

    /// The next `times` conditional puts of `bucket/key` find `old` replaced by `new` in the
    /// object first: another writer between the tool's read and its write.
    pub fn s3_writer(&self, bucket: &str, key: &str, times: u32, old: &str, new: &str) {
        reqwest::blocking::Client::new()
            .post(format!("{}/_test/s3-writer", self.moto_url))
            .json(&serde_json::json!({"bucket": bucket, "key": key, "times": times, "old": old, "new": new}))
            .send()
            .unwrap()
            .error_for_status()
            .unwrap();
    }

    pub fn moto_url(&self) -> &str {
        &self.moto_url
    }

    pub fn iam(&self) -> aws_sdk_iam::Client {
        iam_client(&self.moto_url, &self.admin.id, &self.admin.secret)
    }

    /// Creates an IAM user allowed `actions`.
    pub fn user(&self, name: &str, actions: &[&str]) {
        let iam = self.iam();
        runtime().block_on(async {
            iam.create_user().user_name(name).send().await.unwrap();
            iam.put_user_policy()
                .user_name(name)
                .policy_name("rotation")
                .policy_document(policy(actions))
                .send()
                .await
                .unwrap();
        });
    }

    /// An IAM user allowed exactly the actions of the shipped policy.
    pub fn rotating_user(&self, name: &str) {
        let actions = shipped_actions();
        let actions: Vec<&str> = actions.iter().map(String::as_str).collect();
        self.user(name, &actions);
    }

    /// A new key of `user`, made to look `days` old.
    pub fn aged_key(&self, user: &str, days: i64) -> Key {
        let key = self.create_key(user);
        self.age_key_days(&key.id, days);
        key
    }

    /// Creates `scopes` on the fake GitHub, each holding `key` under the default secret names,
    /// written `days` ago.
    pub fn seed(&self, scopes: &[ScopeId], key: &Key, days: i64) {
        let then = chrono::Utc::now() - chrono::Duration::days(days);
        for scope in scopes {
            match &scope.environment {
                None => self.github.add_repo(&scope.repository),
                Some(e) => self.github.add_environment(&scope.repository, e),
            }
            self.github
                .set_secret(scope, "AWS_ACCESS_KEY_ID", &key.id, then);
            self.github
                .set_secret(scope, "AWS_SECRET_ACCESS_KEY", &key.secret, then);
        }
    }

    /// Sets `user`'s key `key_id` Inactive, as a person would in the console.
    pub fn deactivate_by_hand(&self, user: &str, key_id: &str) {
        let iam = self.iam();
        runtime().block_on(async {
            iam.update_access_key()
                .user_name(user)
                .access_key_id(key_id)
                .status(aws_sdk_iam::types::StatusType::Inactive)
                .send()
                .await
                .unwrap();
        });
    }

    pub fn create_key(&self, user: &str) -> Key {
        let key = new_key(&self.iam(), user);
        self.remember(&key.secret);
        key
    }

    /// Sets up AWS account `account_id` (moto keeps resources per account): its own admin.
    pub fn account_admin(&self, account_id: &str) -> Key {
        let v: serde_json::Value = reqwest::blocking::Client::new()
            .post(format!("{}/_test/account", self.moto_url))
            .json(&serde_json::json!({ "account_id": account_id }))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let key = Key {
            id: v["id"].as_str().unwrap().into(),
            secret: v["secret"].as_str().unwrap().into(),
        };
        self.remember(&key.secret);
        key
    }

    /// IAM of AWS account `account`, as its admin.
    fn account_iam(&self, account: &str) -> aws_sdk_iam::Client {
        let admin = self.account_admin(account);
        iam_client(&self.moto_url, &admin.id, &admin.secret)
    }

    /// In AWS account `account`: the role `role` that `trusted` (an ARN of the home account)
    /// may assume, with `external_id` when given, allowed `actions`; and the IAM user `user`
    /// with a key `days` old, which is answered.
    pub fn account_user(
        &self,
        account: &str,
        role: AccountRoleSpec<'_>,
        user: &str,
        days: i64,
    ) -> Key {
        let iam = self.account_iam(account);
        let trust = aws_key_rotator::policy::account_role_trust(role.trusted, role.external_id);
        runtime().block_on(async {
            // One role serves every user of its account: made once.
            if iam.get_role().role_name(role.name).send().await.is_err() {
                iam.create_role()
                    .role_name(role.name)
                    .assume_role_policy_document(trust.to_string())
                    .send()
                    .await
                    .unwrap();
                iam.put_role_policy()
                    .role_name(role.name)
                    .policy_name("rotation")
                    .policy_document(policy(role.actions))
                    .send()
                    .await
                    .unwrap();
            }
            iam.create_user().user_name(user).send().await.unwrap();
        });
        let key = new_key(&iam, user);
        self.remember(&key.secret);
        self.age_key_days(&key.id, days);
        key
    }

    /// Adds every AssumeRole session's secret and token moto issued to the leak scan.
    pub fn remember_sessions(&self) -> usize {
        let v: Vec<String> = reqwest::blocking::Client::new()
            .get(format!("{}/_test/sessions", self.moto_url))
            .send()
            .unwrap()
            .json()
            .unwrap();
        for s in &v {
            self.remember(s);
        }
        v.len() / 2
    }

    pub fn remember(&self, secret: &str) {
        self.secrets.lock().unwrap().push(secret.into());
    }

    /// Moves a key's creation `minutes` into the past.
    pub fn age_key(&self, key_id: &str, minutes: i64) {
        self.backdate(serde_json::json!({"access_key_id": key_id, "minutes": minutes}));
    }

    pub fn age_key_days(&self, key_id: &str, days: i64) {
        self.age_key(key_id, days * 24 * 60);
    }

    /// Keys the user gets from now on never authenticate.
    pub fn break_new_keys(&self, user: &str) {
        let r = reqwest::blocking::Client::new()
            .post(format!("{}/_test/break-new-keys", self.moto_url))
            .json(&serde_json::json!({"user_name": user}))
            .send()
            .unwrap();
        assert!(r.status().is_success());
    }

    /// The next `times` answers to IAM `action` (e.g. "CreateAccessKey") are lost: the call
    /// takes effect, and moto answers 503 instead.
    pub fn lose_answer(&self, action: &str, times: u32) {
        let r = reqwest::blocking::Client::new()
            .post(format!("{}/_test/lose-answer", self.moto_url))
            .json(&serde_json::json!({"action": action, "times": times}))
            .send()
            .unwrap();
        assert!(r.status().is_success());
    }

    /// The next `times` calls of IAM `action` take effect and then never answer.
    pub fn stall_answer(&self, action: &str, times: u32) {
        self.stall(action, times, 0, true);
    }

    /// After `after` calls of AWS `action` pass, the next one never answers; with `applies`
    /// it takes effect first.
    pub fn stall_call(&self, action: &str, after: usize, applies: bool) {
        self.stall(action, 1, after, applies);
    }

    fn stall(&self, action: &str, times: u32, after: usize, applies: bool) {
        let r = reqwest::blocking::Client::new()
            .post(format!("{}/_test/lose-answer", self.moto_url))
            .json(&serde_json::json!({
                "action": action, "times": times, "stall": true, "after": after, "apply": applies
            }))
            .send()
            .unwrap();
        assert!(r.status().is_success());
    }

    /// The AWS actions moto was asked since the last reset, in order, and how many calls are
    /// stalled now.
    pub fn aws_calls(&self) -> (Vec<String>, u64) {
        let v: serde_json::Value = reqwest::blocking::get(format!("{}/_test/calls", self.moto_url))
            .unwrap()
            .json()
            .unwrap();
        let calls = v["calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        (calls, v["stalled"].as_u64().unwrap())
    }

    /// Records a use of the key `minutes_ago`.
    pub fn record_use(&self, key_id: &str, minutes_ago: i64, service: &str) {
        self.backdate(serde_json::json!({"access_key_id": key_id, "last_used_minutes_ago": minutes_ago, "service": service}));
    }

    fn backdate(&self, body: serde_json::Value) {
        let r = reqwest::blocking::Client::new()
            .post(format!("{}/_test/backdate", self.moto_url))
            .json(&body)
            .send()
            .unwrap();
        assert!(r.status().is_success(), "backdate {body}: {}", r.status());
    }

    /// (id, status) of the user's keys, oldest first.
    pub fn keys(&self, user: &str) -> Vec<(String, String)> {
        keys_of(&self.iam(), user)
    }

    /// The keys of `user` in AWS account `account`, oldest first.
    pub fn keys_in_account(&self, account: &str, user: &str) -> Vec<(String, String)> {
        keys_of(&self.account_iam(account), user)
    }

    /// The user's tags (the journal and the lease among them).
    pub fn tags(&self, user: &str) -> std::collections::BTreeMap<String, String> {
        tags_of(&self.iam(), user)
    }

    /// The tags of `user` in AWS account `account`.
    pub fn tags_in_account(
        &self,
        account: &str,
        user: &str,
    ) -> std::collections::BTreeMap<String, String> {
        tags_of(&self.account_iam(account), user)
    }

    /// The rotation journal on the user, parsed.
    pub fn journal(&self, user: &str) -> Option<aws_key_rotator::rotation::journal::Journal> {
        let tags = self.tags(user);
        let value = tags.get(aws_key_rotator::rotation::journal::JOURNAL_TAG)?;
        aws_key_rotator::rotation::journal::Journal::parse(value)
    }

    /// Time passes for the rotation (grace periods, stragglers): the journal's times, and the
    /// creation of the key it records, move `minutes` into the past together (a journal older
    /// than its key is a forgery, CONTRACT §12).
    pub fn backdate_journal(&self, user: &str, minutes: i64) {
        let mut j = self.journal(user).expect("a journal to backdate");
        self.age_key(&j.key, minutes);
        let d = chrono::Duration::minutes(minutes);
        j.at -= d;
        j.held = j.held.map(|h| h - d);
        self.set_tag(
            user,
            aws_key_rotator::rotation::journal::JOURNAL_TAG,
            &j.value(),
        );
    }

    pub fn set_tag(&self, user: &str, key: &str, value: &str) {
        let iam = self.iam();
        runtime().block_on(async {
            let tag = aws_sdk_iam::types::Tag::builder()
                .key(key)
                .value(value)
                .build()
                .unwrap();
            iam.tag_user()
                .user_name(user)
                .tags(tag)
                .send()
                .await
                .unwrap();
        });
    }

    /// Whether STS accepts the key (moto in auth mode; Inactive and deleted keys refused).
    pub fn sts_accepts(&self, key: &Key) -> bool {
        let sts = sts_client(&self.moto_url, &key.id, &key.secret);
        runtime().block_on(async { sts.get_caller_identity().send().await.is_ok() })
    }

    /// The key a consumer's two secrets hold, read from the fake's store.
    pub fn held(&self, scope: &ScopeId, id_name: &str, secret_name: &str) -> Option<Key> {
        let id = self.github.value(scope, id_name)?;
        let secret = self.github.value(scope, secret_name)?;
        self.remember(&secret);
        Some(Key { id, secret })
    }

    pub fn held_default(&self, scope: &ScopeId) -> Option<Key> {
        self.held(scope, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }

    pub fn write_manifest(&self, yaml: &str) {
        let dir = self.workspace.path().join(".github");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("aws-key-rotation.yml"), yaml).unwrap();
    }

    /// No manifest at the default path.
    pub fn remove_manifest(&self) {
        let path = self.workspace.path().join(".github/aws-key-rotation.yml");
        if path.exists() {
            std::fs::remove_file(path).unwrap();
        }
    }

    /// Runs the binary as the action: no arguments, `INPUT_*` with dashes kept.
    pub fn action(&self, creds: &Key, inputs: &[(&str, &str)]) -> Run {
        let mut vars: Vec<(String, String)> = vec![("GITHUB_ACTIONS".into(), "true".into())];
        vars.push(("INPUT_GITHUB-TOKEN".into(), fake_github::TOKEN.into()));
        for (k, v) in inputs {
            vars.push((format!("INPUT_{}", k.to_ascii_uppercase()), (*v).into()));
        }
        self.exec(creds, &[], vars)
    }

    /// Runs the binary as a CLI.
    pub fn cli(&self, creds: &Key, args: &[&str]) -> Run {
        let vars = vec![("GITHUB_TOKEN".into(), fake_github::TOKEN.into())];
        self.exec(creds, args, vars)
    }

    /// Starts the binary directly (never through a shell: dash drops `INPUT_DRY-RUN`-style names).
    pub fn exec(&self, creds: &Key, args: &[&str], vars: Vec<(String, String)>) -> Run {
        self.spawn(creds, args, vars).wait(self)
    }

    /// Starts the binary as [`TestEnv::exec`] does, without waiting for it (to signal or kill it).
    pub fn spawn(&self, creds: &Key, args: &[&str], vars: Vec<(String, String)>) -> Spawned {
        let files = tempfile::tempdir().unwrap();
        let output = files.path().join("output");
        let summary = files.path().join("summary");
        std::fs::write(&output, "").unwrap();
        std::fs::write(&summary, "").unwrap();
        let mut cmd = self.command(
            std::path::Path::new(env!("CARGO_BIN_EXE_aws-key-rotator")),
            creds,
            args,
            vars,
        );
        cmd.env("HOME", files.path())
            .env("GITHUB_OUTPUT", &output)
            .env("GITHUB_STEP_SUMMARY", &summary);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr_pipe = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            stderr_pipe.read_to_string(&mut s).unwrap();
            s
        });
        let mut stdout_pipe = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut s = String::new();
            stdout_pipe.read_to_string(&mut s).unwrap();
            s
        });
        Spawned {
            child,
            files,
            stdout,
            stderr,
        }
    }

    /// The action face ([`TestEnv::action`]) started without waiting.
    pub fn spawn_action(
        &self,
        creds: &Key,
        inputs: &[(&str, &str)],
        vars: &[(&str, &str)],
    ) -> Spawned {
        let mut all: Vec<(String, String)> = vec![
            ("GITHUB_ACTIONS".into(), "true".into()),
            ("INPUT_GITHUB-TOKEN".into(), fake_github::TOKEN.into()),
        ];
        for (k, v) in inputs {
            all.push((format!("INPUT_{}", k.to_ascii_uppercase()), (*v).into()));
        }
        for (k, v) in vars {
            all.push(((*k).into(), (*v).into()));
        }
        self.spawn(creds, &[], all)
    }

    /// `binary` with `args`, the emulators' endpoints, the test's fast timings (which `vars`
    /// override) and `creds` as the AWS credentials: nothing of this machine's environment.
    pub fn command(
        &self,
        binary: &std::path::Path,
        creds: &Key,
        args: &[&str],
        vars: Vec<(String, String)>,
    ) -> Command {
        let mut cmd = Command::new(binary);
        cmd.args(args)
            .env_clear()
            .env("HOME", self.workspace.path())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL", &self.moto_url)
            // moto serves no LookupEvents: CloudTrail is the fake's.
            .env("AWS_ENDPOINT_URL_CLOUDTRAIL", &fake_cloudtrail::fake().url)
            .env("AWS_REGION", "us-east-1")
            .env("GITHUB_API_URL", &self.github.url)
            .env("GITHUB_WORKSPACE", self.workspace.path())
            .env("GITHUB_REPOSITORY", "acme/web")
            .env("AWS_KEY_ROTATOR_GITHUB_WRITE_INTERVAL_MS", "0")
            // Code search's 10 a minute, at a test's pace (its own test checks the spacing).
            .env("AWS_KEY_ROTATOR_CODE_SEARCH_INTERVAL_MS", "300")
            .env("AWS_KEY_ROTATOR_RETRY_BASE_MS", "10")
            .env("AWS_KEY_ROTATOR_PROPAGATION_TIMEOUT_SECONDS", "2")
            .env("AWS_KEY_ROTATOR_POLL_INTERVAL_MS", "20")
            .env("AWS_KEY_ROTATOR_VERIFY_TIMEOUT_MS", "3000")
            .env("AWS_KEY_ROTATOR_LEASE_SETTLE_MS", "20");
        // The fake at the root stands for github.com (its API on loopback serves the instance
        // GITHUB_SERVER_URL names); the one under /api/v3 is a GitHub Enterprise Server.
        if !self.github.url.trim_end_matches('/').ends_with("/api/v3") {
            cmd.env("GITHUB_SERVER_URL", "https://github.com");
        }
        if !creds.id.is_empty() {
            cmd.env("AWS_ACCESS_KEY_ID", &creds.id)
                .env("AWS_SECRET_ACCESS_KEY", &creds.secret);
        }
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd
    }

    /// Adds a run made outside [`TestEnv::exec`] (e.g. in a container) to the leak scan.
    pub fn record(&self, run: &Run) {
        self.runs.lock().unwrap().push(run.visible());
    }

    /// Every secret value: those the test made, those GitHub holds or ever received.
    pub fn known_secrets(&self) -> Vec<String> {
        let mut all = self.secrets.lock().unwrap().clone();
        all.extend(self.github.written_values());
        all.retain(|s| !s.starts_with("AKIA") && !s.starts_with("ASIA") && s.len() >= 16);
        all
    }

    /// Asserts that no secret value appears in anything the binary showed.
    pub fn assert_no_leaks(&self) {
        let secrets = self.known_secrets();
        for (i, text) in self.runs.lock().unwrap().iter().enumerate() {
            for s in &secrets {
                assert!(!text.contains(s.as_str()), "run {i} leaked a secret value");
            }
        }
        for text in self.github.issue_texts() {
            for s in &secrets {
                assert!(
                    !text.contains(s.as_str()),
                    "an issue or comment leaked a secret value"
                );
            }
        }
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.assert_no_leaks();
        }
    }
}

/// SDK settings for `url` with a fixed key: the same for every client the tests make.
pub fn sdk_config(url: &str, id: &str, secret: &str) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            id, secret, None, None, "test",
        )))
        .build()
}

/// A new access key of `user`.
fn new_key(iam: &aws_sdk_iam::Client, user: &str) -> Key {
    runtime().block_on(async {
        let k = iam
            .create_access_key()
            .user_name(user)
            .send()
            .await
            .unwrap();
        let k = k.access_key().unwrap();
        Key {
            id: k.access_key_id().into(),
            secret: k.secret_access_key().into(),
        }
    })
}

/// The tags of `user` (none when it does not exist).
fn tags_of(iam: &aws_sdk_iam::Client, user: &str) -> std::collections::BTreeMap<String, String> {
    runtime().block_on(async {
        match iam.list_user_tags().user_name(user).send().await {
            Ok(out) => out
                .tags()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect(),
            Err(_) => Default::default(),
        }
    })
}

/// The keys of `user`, oldest first, as (id, status).
fn keys_of(iam: &aws_sdk_iam::Client, user: &str) -> Vec<(String, String)> {
    runtime().block_on(async {
        let out = iam.list_access_keys().user_name(user).send().await.unwrap();
        let mut keys: Vec<_> = out
            .access_key_metadata()
            .iter()
            .map(|k| {
                (
                    k.create_date().unwrap().as_nanos(),
                    k.access_key_id().unwrap().to_owned(),
                    k.status().unwrap().as_str().to_owned(),
                )
            })
            .collect();
        keys.sort();
        keys.into_iter().map(|(_, id, s)| (id, s)).collect()
    })
}

/// The role of another account that the rotator assumes (CONTRACT §15).
#[derive(Clone, Copy, Debug)]
pub struct AccountRoleSpec<'a> {
    pub name: &'a str,
    /// Who may assume it: an ARN of the home account.
    pub trusted: &'a str,
    pub external_id: Option<&'a str>,
    pub actions: &'a [&'a str],
}

pub fn iam_client(url: &str, id: &str, secret: &str) -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::new(&sdk_config(url, id, secret))
}

pub fn sts_client(url: &str, id: &str, secret: &str) -> aws_sdk_sts::Client {
    aws_sdk_sts::Client::new(&sdk_config(url, id, secret))
}
