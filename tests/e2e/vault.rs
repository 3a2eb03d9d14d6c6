//! Vault / OpenBao KV v2 consumers (CONTRACT §14) against a real OpenBao server: the pair
//! written with check-and-set into a secret whose other fields are kept, read back, put back on
//! a rollback; a writer racing the tool; a missing secret or mount refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

use crate::support::bao::{self, ROOT_TOKEN};
use crate::support::*;

const USER: &str = "ci-deployer";

fn manifest(path: &str, mount: &str, extra: &str) -> String {
    format!(
        "version: 1
users:
  - name: ci-deployer
    consumers:
      - repository: acme/web
      - vault: {{ mount: {mount}, path: {path} }}
{extra}"
    )
}

/// The old key in acme/web's secrets and in the KV secret at `path` (beside a field of its own).
fn setup(env: &TestEnv, path: &str) -> Key {
    env.rotating_user(USER);
    let old = env.aged_key(USER, 100);
    env.github.add_repo("acme/web");
    env.seed(&[repo("acme/web")], &old, 100);
    let b = bao::bao();
    b.clear(path);
    b.put(
        path,
        json!({"AWS_ACCESS_KEY_ID": old.id, "AWS_SECRET_ACCESS_KEY": old.secret, "region": "eu-west-1"}),
    );
    env.remember(ROOT_TOKEN);
    old
}

fn rotate(env: &TestEnv, address: &str, inputs: &[(&str, &str)]) -> Run {
    let mut all = vec![("command", "rotate"), ("force", "true")];
    all.extend_from_slice(inputs);
    env.spawn_action(
        &env.admin,
        &all,
        &[("VAULT_ADDR", address), ("VAULT_TOKEN", ROOT_TOKEN)],
    )
    .wait(env)
}

fn pair(data: &Value) -> (String, String) {
    (
        data["AWS_ACCESS_KEY_ID"].as_str().unwrap().to_owned(),
        data["AWS_SECRET_ACCESS_KEY"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn a_rotation_writes_the_pair_as_one_version_and_keeps_the_secrets_other_fields() {
    let env = TestEnv::new();
    let path = "ci/rotation";
    let old = setup(&env, path);
    env.write_manifest(&manifest(path, "secret", ""));
    let run = rotate(&env, &bao::bao().url, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    let new = env.held_default(&repo("acme/web")).unwrap();
    assert_ne!(new.id, old.id);
    let (data, version) = bao::bao().get(path).unwrap();
    assert_eq!(pair(&data), (new.id.clone(), new.secret.clone()));
    assert_eq!(data["region"], "eu-west-1", "the other field is kept");
    assert_eq!(version, 2, "one write for the pair");
    assert!(
        run.stdout.contains(&format!("Vault secret secret/{path}")),
        "{}",
        run.stdout
    );
    env.assert_no_leaks();
}

#[test]
fn a_failed_verification_puts_the_old_pair_back() {
    let env = TestEnv::new();
    let path = "ci/rollback";
    let old = setup(&env, path);
    env.github.add_workflow(
        "acme/web",
        "verify.yml",
        WorkflowSpec {
            environment: None,
            mode: RunMode::Fail,
        },
    );
    env.write_manifest(&manifest(
        path,
        "secret",
        "    verify:\n      - repository: acme/web\n        workflow: verify.yml\n",
    ));
    let run = rotate(&env, &bao::bao().url, &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    let (data, version) = bao::bao().get(path).unwrap();
    assert_eq!(
        pair(&data),
        (old.id.clone(), old.secret.clone()),
        "{}",
        run.all()
    );
    assert_eq!(data["region"], "eu-west-1");
    assert_eq!(version, 3, "written, then put back");
    env.assert_no_leaks();
}

#[test]
fn a_missing_secret_or_mount_refuses_before_anything_changes() {
    let env = TestEnv::new();
    let path = "ci/missing";
    setup(&env, "ci/unused");
    bao::bao().clear(path);
    for (mount, needle) in [("secret", "does not exist"), ("nomount", "does not exist")] {
        env.write_manifest(&manifest(path, mount, ""));
        let run = env.changes_nothing(USER, 2, || rotate(&env, &bao::bao().url, &[]));
        assert!(run.stderr.contains(needle), "{}", run.stderr);
        assert!(
            run.stderr.contains(&format!("{mount}/{path}")),
            "{}",
            run.stderr
        );
    }
    assert!(bao::bao().get(path).is_none());
    // No token at all: exit 2, naming what to set.
    env.write_manifest(&manifest(path, "secret", ""));
    let run = env.changes_nothing(USER, 2, || {
        env.spawn_action(
            &env.admin,
            &[("command", "rotate")],
            &[("VAULT_ADDR", &bao::bao().url)],
        )
        .wait(&env)
    });
    assert!(run.stderr.contains("VAULT_TOKEN"), "{}", run.stderr);
}

/// A proxy in front of OpenBao that, before passing on each of the first `interfere` writes to
/// `secret/data/PATH`, writes the secret itself: another writer between the tool's read and
/// its write.
fn racing_proxy(path: &'static str, interfere: usize) -> (String, Arc<AtomicUsize>) {
    use axum::body::Bytes;
    use axum::http::{Method, StatusCode, Uri};
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let upstream = bao::bao().url.clone();
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: axum::http::HeaderMap, body: Bytes| {
            let upstream = upstream.clone();
            let counter = counter.clone();
            async move {
                tokio::task::spawn_blocking(move || {
                    let target = uri.path() == format!("/v1/secret/data/{path}");
                    if method == Method::POST
                        && target
                        && counter.fetch_add(1, Ordering::SeqCst) < interfere
                    {
                        let (data, _) = bao::bao().get(path).unwrap();
                        let mut data = data.as_object().unwrap().clone();
                        data.insert("region".into(), json!("changed by another writer"));
                        bao::bao().put(path, Value::Object(data));
                    }
                    let mut r = reqwest::blocking::Client::new().request(
                        reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap(),
                        format!("{upstream}{uri}"),
                    );
                    for name in ["x-vault-token", "x-vault-namespace", "content-type"] {
                        if let Some(v) = headers.get(name) {
                            r = r.header(name, v.to_str().unwrap());
                        }
                    }
                    let reply = r.body(body.to_vec()).send().unwrap();
                    let status = StatusCode::from_u16(reply.status().as_u16()).unwrap();
                    (status, reply.bytes().unwrap().to_vec())
                })
                .await
                .unwrap()
            }
        },
    );
    let port = free_port();
    let listener = runtime()
        .block_on(tokio::net::TcpListener::bind(("127.0.0.1", port)))
        .unwrap();
    runtime().spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://127.0.0.1:{port}"), seen)
}

#[test]
fn a_writer_racing_the_tool_is_read_again_once_and_twice_fails_the_write_which_is_compensated() {
    let env = TestEnv::new();
    let path = "ci/race";
    let old = setup(&env, path);
    env.write_manifest(&manifest(path, "secret", ""));
    // Once: check-and-set refuses, the tool reads again and writes on top of the other writer.
    let (proxy, seen) = racing_proxy(path, 1);
    let run = rotate(&env, &proxy, &[]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(
        seen.load(Ordering::SeqCst),
        2,
        "one refused write, one that landed"
    );
    let new = env.held_default(&repo("acme/web")).unwrap();
    let (data, version) = bao::bao().get(path).unwrap();
    assert_eq!(pair(&data), (new.id.clone(), new.secret.clone()));
    assert_eq!(
        data["region"], "changed by another writer",
        "the other writer's field is kept"
    );
    assert_eq!(version, 3);

    assert_ne!(new.id, old.id);
    env.assert_no_leaks();
}

#[test]
fn a_second_racing_writer_fails_the_write_and_the_rotation_is_compensated() {
    let env = TestEnv::new();
    let path = "ci/race-twice";
    let old = setup(&env, path);
    // Vault is written first, acme/web (the rotator's own repository) last.
    env.write_manifest(&manifest(path, "secret", ""));
    let (proxy, seen) = racing_proxy(path, 2);
    let run = rotate(&env, &proxy, &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert_eq!(
        seen.load(Ordering::SeqCst),
        2,
        "two refused writes, no third"
    );
    assert!(run.stderr.contains("check-and-set"), "{}", run.stderr);
    let (data, _) = bao::bao().get(path).unwrap();
    assert_eq!(
        pair(&data),
        (old.id.clone(), old.secret.clone()),
        "Vault still holds the old, working key"
    );
    assert_eq!(data["region"], "changed by another writer");
    let held = env.held_default(&repo("acme/web")).unwrap();
    assert_eq!(held.id, old.id, "acme/web was never written");
    assert!(env.sts_accepts(&held));
    env.assert_no_leaks();
}

/// `rotate --force` logging in to Vault as role `ci` with the job's OIDC token from
/// `request_url`.
fn rotate_with_jwt(env: &TestEnv, request_url: &str) -> Run {
    env.spawn_action(
        &env.admin,
        &[
            ("command", "rotate"),
            ("force", "true"),
            ("vault-role", "ci"),
        ],
        &[
            ("VAULT_ADDR", &bao::bao().url),
            ("ACTIONS_ID_TOKEN_REQUEST_URL", request_url),
            (
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
                crate::support::fake_github::oidc::REQUEST_TOKEN,
            ),
        ],
    )
    .wait(env)
}

/// OpenBao's `jwt` auth method trusting the fake GitHub as the OIDC issuer, with a role for
/// the jobs of acme/web that may write `secret/data/ci/*`.
fn jwt_auth(issuer: &str) {
    jwt_auth_with_ttl(issuer, "1h");
}

/// [`jwt_auth`], the role's tokens living `ttl`.
fn jwt_auth_with_ttl(issuer: &str, ttl: &str) {
    use reqwest::Method;
    let b = bao::bao();
    let (status, body) = b.api(Method::POST, "sys/auth/jwt", Some(json!({"type": "jwt"})));
    assert!(
        status == 204 || body.to_string().contains("path is already in use"),
        "{body}"
    );
    let (status, body) = b.api(
        Method::POST,
        "auth/jwt/config",
        Some(json!({"oidc_discovery_url": issuer, "bound_issuer": issuer})),
    );
    assert_eq!(status, 204, "{body}");
    let (status, body) = b.api(
        Method::PUT,
        "sys/policies/acl/ci-writer",
        Some(json!({"policy": "path \"secret/data/ci/*\" { capabilities = [\"read\", \"create\", \"update\"] }"})),
    );
    assert_eq!(status, 204, "{body}");
    let (status, body) = b.api(
        Method::POST,
        "auth/jwt/role/ci",
        Some(json!({
            "role_type": "jwt",
            "user_claim": "sub",
            "bound_audiences": [b.url],
            "bound_claims": {"repository": "acme/web"},
            "token_policies": ["ci-writer"],
            "token_ttl": ttl,
        })),
    );
    assert_eq!(status, 204, "{body}");
}

#[test]
fn a_jwt_login_with_the_jobs_oidc_token_and_a_token_of_another_repository_refused() {
    let env = TestEnv::new();
    let path = "ci/jwt";
    let old = setup(&env, path);
    let (request_url, issuer) = env.github.enable_oidc("acme/web");
    jwt_auth(&issuer);
    env.remember(crate::support::fake_github::oidc::REQUEST_TOKEN);
    env.write_manifest(&manifest(path, "secret", ""));
    let login = |env: &TestEnv| rotate_with_jwt(env, &request_url);
    let run = login(&env);
    assert_eq!(run.code, 0, "{}", run.all());
    let new = env.held_default(&repo("acme/web")).unwrap();
    assert_ne!(new.id, old.id);
    let (data, _) = bao::bao().get(path).unwrap();
    assert_eq!(pair(&data), (new.id.clone(), new.secret.clone()));
    let issued = env.github.issued_oidc_tokens();
    assert_eq!(issued.len(), 1, "one token per run");
    for t in &issued {
        env.remember(t);
    }
    // The issuer now speaks for another repository: the role's bound claims refuse it.
    env.github.set_oidc_repository("acme/other");
    let run = env.changes_nothing(USER, 2, || login(&env));
    assert!(
        run.stderr.contains("refused the JWT login as role ci"),
        "{}",
        run.stderr
    );
    for t in env.github.issued_oidc_tokens() {
        env.remember(&t);
    }
    env.assert_no_leaks();
}

#[test]
fn tokens_that_would_expire_travel_in_clear_or_go_elsewhere_are_refused_before_anything_changes() {
    let env = TestEnv::new();
    let path = "ci/refusals";
    setup(&env, path);
    // A token that lasts a minute: it would expire before a rollback.
    let (status, body) = bao::bao().api(
        reqwest::Method::POST,
        "auth/token/create",
        Some(json!({"ttl": "60s", "policies": ["default"]})),
    );
    assert_eq!(status, 200, "{body}");
    let short = body["auth"]["client_token"].as_str().unwrap().to_owned();
    env.remember(&short);
    env.write_manifest(&manifest(path, "secret", ""));
    let run = env.changes_nothing(USER, 2, || {
        env.spawn_action(
            &env.admin,
            &[("command", "rotate"), ("force", "true")],
            &[("VAULT_ADDR", &bao::bao().url), ("VAULT_TOKEN", &short)],
        )
        .wait(&env)
    });
    assert!(run.stderr.contains("expires in"), "{}", run.stderr);
    // A server on plain http that is not this machine; a server that is not VAULT_ADDR.
    for (address, needle) in [
        ("http://vault.example.com:8200", "plain http"),
        // One TLS rule (CONTRACT §12a): the scheme case-insensitively, the host after userinfo.
        ("HTTP://vault.example.com:8200", "plain http"),
        ("http://127.0.0.1:1@vault.example.com:8200", "plain http"),
        ("https://other-vault.example.com", "is not sent elsewhere"),
    ] {
        env.write_manifest(&manifest(
            path,
            "secret",
            &format!("        address: {address}\n"),
        ));
        let run = env.changes_nothing(USER, 2, || rotate(&env, &bao::bao().url, &[]));
        assert!(run.stderr.contains(needle), "{}", run.stderr);
    }
    assert_eq!(
        bao::bao().get(path).unwrap().1,
        1,
        "Vault was never written"
    );
    env.assert_no_leaks();
}

/// CONTRACT §12a, item 9: a JWT role whose tokens live two seconds (short TTLs are good
/// practice) is not refused: the run logs in again with the job's OIDC token when its token
/// would run out. Here the verification times out after three seconds, so the rollback's
/// write-back needs a fresh login; it gets one, and the old pair is back in Vault.
#[test]
fn a_short_lived_jwt_login_logs_in_again_and_the_rollback_reaches_vault() {
    let env = TestEnv::new();
    let path = "ci/short";
    let old = setup(&env, path);
    let (request_url, issuer) = env.github.enable_oidc("acme/web");
    jwt_auth_with_ttl(&issuer, "2s");
    env.remember(crate::support::fake_github::oidc::REQUEST_TOKEN);
    env.github.add_workflow(
        "acme/web",
        "verify.yml",
        WorkflowSpec {
            environment: None,
            mode: RunMode::NeverComplete,
        },
    );
    env.write_manifest(&manifest(
        path,
        "secret",
        "    verify:\n      - repository: acme/web\n        workflow: verify.yml\n",
    ));
    let run = rotate_with_jwt(&env, &request_url);
    for t in env.github.issued_oidc_tokens() {
        env.remember(&t);
    }
    assert_eq!(run.code, 1, "the verification timed out: {}", run.all());
    assert!(!run.all().contains("expires in"), "{}", run.all());
    let (data, version) = bao::bao().get(path).unwrap();
    assert_eq!(
        pair(&data),
        (old.id.clone(), old.secret.clone()),
        "{}",
        run.all()
    );
    assert_eq!(version, 3, "written, then put back");
    assert!(
        env.github.issued_oidc_tokens().len() >= 2,
        "logged in again: {}",
        run.all()
    );
    env.assert_no_leaks();
}
