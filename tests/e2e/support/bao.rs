//! A real OpenBao server (`bao server -dev`, from scripts/setup-test-env), one per test binary,
//! with its KV v2 engine at `secret/`. Tests use paths of their own, cleared first.

use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{free_port, repo_root};

/// The dev server's root token (a value the leak scan looks for).
pub const ROOT_TOKEN: &str = "bao-test-root-token-0a1b2c3d4e5f";

pub struct Bao {
    pub url: String,
    _child: Child,
}

fn bao_binary() -> std::path::PathBuf {
    let venv = repo_root().join(".venv/bin/bao");
    if venv.exists() { venv } else { "bao".into() }
}

pub fn bao() -> &'static Bao {
    static BAO: OnceLock<Bao> = OnceLock::new();
    BAO.get_or_init(|| {
        let port = free_port();
        let mut cmd = Command::new(bao_binary());
        cmd.args([
            "server",
            "-dev",
            &format!("-dev-root-token-id={ROOT_TOKEN}"),
            &format!("-dev-listen-address=127.0.0.1:{port}"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        // The server goes when the test binary goes, however it ends: the kernel kills it when
        // the thread that started it ends, so a thread of its own starts it and never ends.
        use std::os::unix::process::CommandExt;
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            tx.send(cmd.spawn()).unwrap();
            loop {
                std::thread::park();
            }
        });
        let child = rx.recv().unwrap().unwrap_or_else(|e| {
            panic!(
                "cannot start OpenBao ({:?}): {e}; run scripts/setup-test-env",
                bao_binary()
            )
        });
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = reqwest::blocking::get(format!("{url}/v1/sys/health"))
                .is_ok_and(|r| r.status().is_success());
            if up {
                break;
            }
            assert!(Instant::now() < deadline, "OpenBao did not start on {url}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Bao { url, _child: child }
    })
}

impl Bao {
    fn request(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = reqwest::blocking::Client::new()
            .request(method, format!("{}/v1/{path}", self.url))
            .header("X-Vault-Token", ROOT_TOKEN);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let reply = r.send().unwrap();
        let status = reply.status().as_u16();
        (status, reply.json().unwrap_or(Value::Null))
    }

    /// Writes a KV v2 secret at `secret/PATH` (a new version), as another writer would.
    pub fn put(&self, path: &str, data: Value) {
        let (status, body) = self.request(
            reqwest::Method::POST,
            &format!("secret/data/{path}"),
            Some(json!({ "data": data })),
        );
        assert_eq!(status, 200, "{body}");
    }

    /// The secret's fields and version (`None`: it does not exist).
    pub fn get(&self, path: &str) -> Option<(Value, u64)> {
        let (status, body) =
            self.request(reqwest::Method::GET, &format!("secret/data/{path}"), None);
        (status == 200).then(|| {
            (
                body["data"]["data"].clone(),
                body["data"]["metadata"]["version"].as_u64().unwrap(),
            )
        })
    }

    /// Removes every version of the secret (a test's clean start).
    pub fn clear(&self, path: &str) {
        self.request(
            reqwest::Method::DELETE,
            &format!("secret/metadata/{path}"),
            None,
        );
    }

    /// Any other call to the server's API, as root.
    pub fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.request(method, path, body)
    }
}
