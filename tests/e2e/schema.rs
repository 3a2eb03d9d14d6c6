//! The committed JSON Schema of the manifest is the one the types generate.
//! Regenerate with `UPDATE_SCHEMA=1 cargo test --test e2e schema::`.

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/schema/aws-key-rotation.schema.json"
);

#[test]
fn committed_schema_is_current() {
    let generated = aws_key_rotator::manifest::json_schema();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(PATH, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(PATH).unwrap_or_default();
    assert!(
        committed == generated,
        "schema/aws-key-rotation.schema.json is stale: run UPDATE_SCHEMA=1 cargo test --test e2e schema::"
    );
}

#[test]
fn schema_describes_the_manifest() {
    let v: serde_json::Value =
        serde_json::from_str(&aws_key_rotator::manifest::json_schema()).unwrap();
    assert_eq!(v["required"], serde_json::json!(["version", "users"]));
    assert_eq!(v["additionalProperties"], false);
}

#[test]
fn the_example_manifest_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/aws-key-rotation.yml");
    let text = std::fs::read_to_string(path).unwrap();
    let m = aws_key_rotator::manifest::parse("examples/aws-key-rotation.yml", &text).unwrap();
    assert_eq!(m.users[0].name, "ci-deployer");
    assert_eq!(m.users[0].consumers.len(), 5);
    assert_eq!(m.users[0].verify.len(), 1);
}

const REPORT_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/report.schema.json");

/// The `--json` document's schema (every outcome, errors included) is the one the types make.
#[test]
fn committed_report_schema_is_current() {
    let generated = aws_key_rotator::report::json_schema();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(REPORT_PATH, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(REPORT_PATH).unwrap_or_default();
    assert!(
        committed == generated,
        "schema/report.schema.json is stale: run UPDATE_SCHEMA=1 cargo test --test e2e schema::"
    );
    let v: serde_json::Value = serde_json::from_str(&generated).unwrap();
    for field in ["command", "users", "error"] {
        assert!(v["properties"][field].is_object(), "{field}");
    }
}
