use super::*;
use DocumentFormat::*;

const ID: &str = "AKIANEWNEWNEWNEW0001";
const SECRET: &str = "new/secret+value=0123456789abcdefghijklm";

fn swap(format: DocumentFormat, text: &str, fields: [&str; 2]) -> String {
    replace(format, text, &[(fields[0], ID), (fields[1], SECRET)]).unwrap()
}

#[test]
fn json_keeps_every_other_byte() {
    let text = "{\n  \"name\": \"web\",\n  \"aws\": {\"key_id\": \"AKIAOLD\", \"secret\" : \"old/s+\"},\n  \"list\": [1, {\"key_id\": \"x\"}]\n}\n";
    assert_eq!(
        read(Json, text, "aws.key_id").unwrap().as_deref(),
        Some("AKIAOLD")
    );
    assert_eq!(
        read(Json, text, "aws.secret").unwrap().as_deref(),
        Some("old/s+")
    );
    let out = swap(Json, text, ["aws.key_id", "aws.secret"]);
    assert_eq!(out, text.replace("AKIAOLD", ID).replace("old/s+", SECRET));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["aws"]["secret"], SECRET);
    assert_eq!(read(Json, text, "aws.nothing").unwrap(), None);
    assert_eq!(read(Json, text, "name.deeper").unwrap(), None);
}

#[test]
fn json_that_yaml_would_accept_is_refused() {
    let e = read(Json, "aws:\n  key_id: x\n", "aws.key_id").unwrap_err();
    assert!(e.0.contains("not a JSON document (line 1"), "{e}");
}

#[test]
fn yaml_keeps_comments_and_quoting() {
    let text = "# app config\naws:\n  key_id: AKIAOLD   # rotated by the tool\n  secret: 'old/s+'\nother: \"kept\"\n";
    let out = swap(Yaml, text, ["aws.key_id", "aws.secret"]);
    assert_eq!(
        out,
        format!(
            "# app config\naws:\n  key_id: {ID}   # rotated by the tool\n  secret: '{SECRET}'\nother: \"kept\"\n"
        )
    );
    let dq = "aws: {key_id: \"AKIAOLD\", secret: \"old\"}\n";
    assert_eq!(
        swap(Yaml, dq, ["aws.key_id", "aws.secret"]),
        format!("aws: {{key_id: \"{ID}\", secret: \"{SECRET}\"}}\n")
    );
}

#[test]
fn yaml_refuses_what_it_cannot_edit_in_place() {
    for (text, says) in [
        ("aws:\n  key_id: *a\nx: &a v\n", "not a YAML document"),
        ("x: &a v\naws:\n  key_id: *a\n", "alias"),
        ("aws:\n  key_id: |\n    AKIA\n", "block scalar"),
        ("aws:\n  key_id:\n    - a\n", "not a value"),
        ("aws:\n  key_id: a\n  key_id: b\n", "appears twice"),
        ("aws: [\n", "not a YAML document"),
    ] {
        let e = read(Yaml, text, "aws.key_id").unwrap_err();
        assert!(e.0.contains(says), "{text:?}: {e}");
    }
}

#[test]
fn dotenv_keeps_lines_and_quotes() {
    let text = "# env\r\nexport AWS_ACCESS_KEY_ID=AKIAOLD\r\nAWS_SECRET_ACCESS_KEY=\"old/s+\" # the secret\r\nOTHER=1\r\n";
    let out = swap(Dotenv, text, ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]);
    assert_eq!(
        out,
        format!(
            "# env\r\nexport AWS_ACCESS_KEY_ID={ID}\r\nAWS_SECRET_ACCESS_KEY=\"{SECRET}\" # the secret\r\nOTHER=1\r\n"
        )
    );
    assert_eq!(
        read(Dotenv, text, "AWS_SECRET_ACCESS_KEY")
            .unwrap()
            .as_deref(),
        Some("old/s+")
    );
    let twice = "A=1\nA=2\n";
    assert!(
        read(Dotenv, twice, "A")
            .unwrap_err()
            .0
            .contains("lines 1 and 2")
    );
    let bad = "A=1\nthis is not\n";
    assert!(read(Dotenv, bad, "A").unwrap_err().0.contains("line 2"));
}

#[test]
fn ini_and_credentials_touch_only_their_section() {
    let text = "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = keep/me\n\n[backup]\naws_access_key_id=AKIAOLD\naws_secret_access_key =  old/s+\nregion = eu-west-1\ns3 =\n  max_concurrent_requests = 20\n";
    let out = swap(
        Credentials,
        text,
        ["backup.aws_access_key_id", "backup.aws_secret_access_key"],
    );
    assert_eq!(out, text.replace("AKIAOLD", ID).replace("old/s+", SECRET));
    assert_eq!(
        read(Ini, text, "default.aws_secret_access_key")
            .unwrap()
            .as_deref(),
        Some("keep/me")
    );
    assert_eq!(read(Ini, text, "nosuch.aws_access_key_id").unwrap(), None);
    assert!(
        read(Ini, "[a\nk=v\n", "a.k")
            .unwrap_err()
            .0
            .contains("line 1")
    );
    assert!(
        read(Ini, "[a]\nnot a setting\n", "a.k")
            .unwrap_err()
            .0
            .contains("line 2")
    );
}

#[test]
fn a_missing_field_is_named_and_nothing_is_written() {
    let e = replace(Yaml, "aws: {}\n", &[("aws.key_id", ID)]).unwrap_err();
    assert!(e.0.contains("`aws.key_id`"), "{e}");
}

#[test]
fn errors_never_quote_the_document() {
    let secret_text = "aws:\n  key_id: AKIAOLD\n  secret: very/secret/value [\n";
    for f in [Json, Yaml, Dotenv, Ini, Credentials] {
        if let Err(e) = read(f, secret_text, "aws.secret") {
            assert!(!e.0.contains("very/secret"), "{f}: {e}");
        }
    }
}

#[test]
fn values_outside_a_keys_alphabet_are_refused() {
    let e = replace(Dotenv, "A=1\n", &[("A", "x\ny")]).unwrap_err();
    assert!(e.0.contains("not an access key id"), "{e}");
}

#[test]
fn a_place_that_holds_no_string_is_refused_before_any_put() {
    for (format, text, says) in [
        (Yaml, "aws:\n  key_id:\n  secret: s\n", "holds no string"),
        (
            Json,
            "{\"aws\": {\"key_id\": null, \"secret\": \"s\"}}",
            "holds no string",
        ),
        (
            Json,
            "{\"aws\": {\"key_id\": 12, \"secret\": \"s\"}}",
            "holds no string",
        ),
    ] {
        let e = replace(format, text, &[("aws.key_id", ID), ("aws.secret", SECRET)]).unwrap_err();
        assert!(e.0.contains(says), "{text:?}: {e}");
    }
}

#[test]
fn an_ini_value_is_the_rest_of_its_line_as_the_aws_cli_reads_it() {
    let text = "[backup]\naws_access_key_id = \"AKIAOLD\"\naws_secret_access_key = old\n";
    assert_eq!(
        read(Credentials, text, "backup.aws_access_key_id")
            .unwrap()
            .as_deref(),
        Some("\"AKIAOLD\"")
    );
    let out = swap(
        Credentials,
        text,
        ["backup.aws_access_key_id", "backup.aws_secret_access_key"],
    );
    assert!(
        out.contains(&format!("aws_access_key_id = {ID}\n")),
        "{out}"
    );
}

#[test]
fn a_dotenv_quote_escaped_inside_a_value_does_not_end_it() {
    let text = "A=\"x\\\"y\" # c\nB=2\n";
    assert_eq!(read(Dotenv, text, "A").unwrap().as_deref(), Some("x\\\"y"));
    let out = replace(Dotenv, text, &[("A", ID)]).unwrap();
    assert_eq!(out, format!("A=\"{ID}\" # c\nB=2\n"));
}
