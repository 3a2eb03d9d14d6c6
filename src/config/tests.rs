use super::*;

fn with(pairs: &[(&str, &str)]) -> RawInputs {
    let mut raw = RawInputs::default();
    for (k, v) in pairs {
        raw.set(k, *v);
    }
    raw
}

#[test]
fn defaults_and_validation() {
    let s = Settings::from_raw(RawInputs::default()).unwrap();
    assert_eq!(s.command, CommandName::Rotate);
    assert_eq!(s.straggler_window, chrono::Duration::minutes(15));
    assert_eq!(s.verify_timeout, Duration::from_secs(1800));
    assert_eq!(s.deactivate_after, None);
    assert_eq!(
        s.config,
        ManifestSource::File {
            path: DEFAULT_CONFIG.into(),
            explicit: false
        }
    );
    assert_eq!(
        Settings::from_raw(with(&[("dry-run", "yes")])).unwrap_err(),
        "input dry-run must be true or false, not \"yes\""
    );
    assert!(
        Settings::from_raw(with(&[("command", "spin")]))
            .unwrap_err()
            .contains("not \"spin\"")
    );
    assert!(
        Settings::from_raw(with(&[("straggler-window-minutes", "-1")]))
            .unwrap_err()
            .contains("straggler-window-minutes")
    );
    let s = Settings::from_raw(with(&[
        ("deactivate-after-hours", "0"),
        ("delete-after-days", "3"),
    ]))
    .unwrap();
    assert_eq!(s.deactivate_after, Some(chrono::Duration::zero()));
    assert_eq!(s.delete_after, Some(chrono::Duration::days(3)));
}

#[test]
fn each_face_names_inputs_its_own_way() {
    let mut raw = with(&[("force", "maybe")]);
    assert!(
        Settings::from_raw(raw.clone())
            .unwrap_err()
            .starts_with("input force ")
    );
    raw.face = Face::Cli;
    assert!(
        Settings::from_raw(raw)
            .unwrap_err()
            .starts_with("flag --force ")
    );
}

#[test]
fn the_command_line_and_the_environment_give_the_same_raw_inputs() {
    let args = [
        "aws-key-rotator",
        "deactivate",
        "--dry-run",
        "--old-access-key-id",
        "AKIA1",
        "--deactivate-after-hours",
        "0",
    ];
    let cli = RawInputs::from_args(args, &HashMap::new()).unwrap();
    let env: HashMap<String, String> = [
        ("INPUT_COMMAND", "deactivate"),
        ("INPUT_DRY-RUN", "true"),
        ("INPUT_OLD-ACCESS-KEY-ID", "AKIA1"),
        ("INPUT_DEACTIVATE-AFTER-HOURS", "0"),
        ("INPUT_GITHUB-TOKEN", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let action = RawInputs::from_env(&env);
    for i in INPUTS {
        if !matches!(i.kind, Kind::Secret(_)) {
            assert_eq!(cli.get(i.name), action.get(i.name), "{}", i.name);
        }
    }
    assert!(action.secret("github-token").is_none());
    assert_eq!(cli.face, Face::Cli);
    // Secrets are never flags; the CLI reads them from the environment.
    for flag in ["--github-token", "--app-private-key"] {
        assert!(RawInputs::from_args(["aws-key-rotator", flag, "x"], &HashMap::new()).is_err());
    }
    let env: HashMap<String, String> =
        [("GITHUB_APP_PRIVATE_KEY".to_owned(), "pem".to_owned())].into();
    let raw = RawInputs::from_args(["aws-key-rotator", "status", "--app-id", "7"], &env).unwrap();
    let s = Settings::from_raw(raw).unwrap();
    assert_eq!(s.app.map(|(id, _)| id), Some(7));
}

#[test]
fn app_credentials_go_together_and_exclude_a_token() {
    let app = |id: &str, key: &str, token: &str| {
        let mut raw = with(&[("app-id", id)]);
        raw.set_secret("app-private-key", key)
            .set_secret("github-token", token);
        Settings::from_raw(raw).map(|s| s.app.map(|(id, _)| id))
    };
    assert_eq!(app("", "", ""), Ok(None));
    assert_eq!(app("42", "pem", ""), Ok(Some(42)));
    assert!(app("42", "", "").unwrap_err().contains("go together"));
    assert!(app("", "pem", "").unwrap_err().contains("go together"));
    assert!(app("42", "pem", "ghp_x").unwrap_err().contains("exclusive"));
    assert!(
        app("forty-two", "pem", "")
            .unwrap_err()
            .contains("numeric id")
    );
}

/// CONTRACT §12a and §17: `for` names one of the two identities, and `compromised-key-id` is a
/// key id (never a secret), each refused by name otherwise, before anything runs.
#[test]
fn policy_for_and_compromised_key_id_are_checked() {
    assert_eq!(
        Settings::from_raw(RawInputs::default()).unwrap().policy_for,
        PolicyFor::Rotator
    );
    assert_eq!(
        Settings::from_raw(with(&[("for", "migrate")]))
            .unwrap()
            .policy_for,
        PolicyFor::Migrate
    );
    let e = Settings::from_raw(with(&[("for", "admin")])).unwrap_err();
    assert!(
        e.starts_with("input for \"admin\" is not an identity"),
        "{e}"
    );
    let id = "AKIAIOSFODNN7EXAMPLE";
    assert_eq!(
        Settings::from_raw(with(&[("compromised-key-id", id)]))
            .unwrap()
            .compromised_key_id
            .as_deref(),
        Some(id)
    );
    for bad in [
        "akiaiosfodnn7example",
        "AKIA",
        "wJalrXUtnFEMI/K7MDENG\r::error::x",
    ] {
        let e = Settings::from_raw(with(&[("compromised-key-id", bad)])).unwrap_err();
        assert!(e.contains("is not an access key id"), "{e}");
        assert!(!e.contains('\r'), "quoted inert: {e:?}");
    }
}
