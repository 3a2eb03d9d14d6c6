//! S3 config objects (CONTRACT §18) against moto's S3 and KMS: each format rotated with every
//! other byte of the document kept, its content type, metadata and KMS key too; a failed
//! verification puts the earlier text back; a writer between the tool's read and its write;
//! an unencrypted object, a missing object or path and an unparsable document refused before
//! anything changes; a credentials file a script signs with after the rotation.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;

use crate::support::*;

const USER: &str = "app-config";
const BUCKET: &str = "acme-config";

/// One object of each format, each holding the pair among fields of its own.
fn documents(k: &Key) -> Vec<(&'static str, &'static str, String)> {
    let (id, secret) = (&k.id, &k.secret);
    vec![
        (
            "web/prod.json",
            "fields: { access-key-id: aws.key_id, secret-access-key: aws.secret }",
            format!(
                "{{\n  \"name\": \"web\",\n  \"aws\": {{\n    \"region\": \"eu-west-1\",\n    \"key_id\": \"{id}\",\n    \"secret\": \"{secret}\"\n  }},\n  \"replicas\": [1, 2]\n}}\n"
            ),
        ),
        (
            "web/prod.yaml",
            "fields: { access-key-id: aws.key_id, secret-access-key: aws.secret }",
            format!(
                "# web's settings\naws:\n  key_id: {id}   # rotated by aws-key-rotator\n  secret: '{secret}'\nreplicas: 2\n"
            ),
        ),
        (
            "batch/.env",
            "format: dotenv",
            format!(
                "# batch\r\nexport AWS_ACCESS_KEY_ID={id}\r\nAWS_SECRET_ACCESS_KEY=\"{secret}\"\r\nQUEUE=jobs\r\n"
            ),
        ),
        (
            "legacy/app.ini",
            "fields: { access-key-id: aws.access_key, secret-access-key: aws.secret_key }",
            format!(
                "; legacy app\n[db]\nhost = db.internal\n\n[aws]\naccess_key = {id}\nsecret_key = {secret}\n"
            ),
        ),
        (
            "backup/credentials",
            "profile: backup",
            format!(
                "[default]\naws_access_key_id = AKIAOTHERUSER0000000\naws_secret_access_key = someone/else+entirely\n\n[backup]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\nregion = eu-west-1\n"
            ),
        ),
    ]
}

fn manifest(objects: &[(&str, &str, String)], extra: &str) -> String {
    let mut m = format!(
        "version: 1\nusers:\n  - name: {USER}\n    consumers:\n      - repository: acme/web\n"
    );
    for (key, fields, _) in objects {
        m.push_str(&format!(
            "      - s3: {{ bucket: {BUCKET}, key: {key} }}\n        {fields}\n"
        ));
    }
    m.push_str(extra);
    m
}

/// A KMS key, the bucket (versioned or not) with SSE-KMS by default, and the objects, each
/// with a content type and metadata of its own. Answers the KMS key's ARN.
fn bucket(env: &TestEnv, versioned: bool, objects: &[(&str, &str, String)]) -> String {
    let s3 = env.s3();
    let kms = env.kms();
    runtime().block_on(async {
        let key = kms.create_key().send().await.unwrap();
        let key_arn = key.key_metadata().unwrap().arn().unwrap().to_owned();
        s3.create_bucket().bucket(BUCKET).send().await.unwrap();
        if versioned {
            s3.put_bucket_versioning()
                .bucket(BUCKET)
                .versioning_configuration(
                    aws_sdk_s3::types::VersioningConfiguration::builder()
                        .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                        .build(),
                )
                .send()
                .await
                .unwrap();
        }
        let by_default = aws_sdk_s3::types::ServerSideEncryptionByDefault::builder()
            .sse_algorithm(ServerSideEncryption::AwsKms)
            .kms_master_key_id(&key_arn)
            .build()
            .unwrap();
        s3.put_bucket_encryption()
            .bucket(BUCKET)
            .server_side_encryption_configuration(
                aws_sdk_s3::types::ServerSideEncryptionConfiguration::builder()
                    .rules(
                        aws_sdk_s3::types::ServerSideEncryptionRule::builder()
                            .apply_server_side_encryption_by_default(by_default)
                            .build(),
                    )
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        for (key, _, text) in objects {
            s3.put_object()
                .bucket(BUCKET)
                .key(*key)
                .body(ByteStream::from(text.clone().into_bytes()))
                .content_type("text/plain; charset=utf-8")
                .metadata("owner", "platform")
                .send()
                .await
                .unwrap();
        }
        key_arn
    })
}

/// An object as S3 holds it: text, content type, metadata, encryption and KMS key.
#[derive(Debug, PartialEq)]
struct Object {
    text: String,
    content_type: Option<String>,
    owner: Option<String>,
    encryption: Option<ServerSideEncryption>,
    kms_key: Option<String>,
}

fn object(env: &TestEnv, key: &str) -> Object {
    let s3 = env.s3();
    runtime().block_on(async {
        let out = s3
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .unwrap();
        Object {
            content_type: out.content_type.clone(),
            owner: out.metadata().and_then(|m| m.get("owner").cloned()),
            encryption: out.server_side_encryption.clone(),
            kms_key: out.ssekms_key_id.clone(),
            text: String::from_utf8(out.body.collect().await.unwrap().to_vec()).unwrap(),
        }
    })
}

/// How many times `key` was put since the test began (the set-up's put included).
fn puts(env: &TestEnv, key: &str) -> usize {
    let wanted = format!("PUT /{BUCKET}/{key}");
    env.aws_calls().0.iter().filter(|c| **c == wanted).count()
}

/// The text of `key`'s version `version` (a versioned bucket keeps each).
fn version_text(env: &TestEnv, key: &str, version: &str) -> String {
    let s3 = env.s3();
    runtime().block_on(async {
        let out = s3
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .version_id(version)
            .send()
            .await
            .unwrap();
        String::from_utf8(out.body.collect().await.unwrap().to_vec()).unwrap()
    })
}

fn version_id(env: &TestEnv, key: &str) -> String {
    let s3 = env.s3();
    runtime().block_on(async {
        let out = s3
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .unwrap();
        out.version_id.unwrap()
    })
}

fn setup(env: &TestEnv) -> Key {
    env.rotating_user(USER);
    let old = env.aged_key(USER, 100);
    env.github.add_repo("acme/web");
    env.seed(&[repo("acme/web")], &old, 100);
    old
}

fn rotate(env: &TestEnv) -> Run {
    env.action(&env.admin, &[("command", "rotate"), ("force", "true")])
}

#[test]
fn each_format_is_rotated_with_every_other_byte_its_type_metadata_and_kms_key_kept() {
    let env = TestEnv::new();
    let old = setup(&env);
    let docs = documents(&old);
    let key_arn = bucket(&env, true, &docs);
    let first: Vec<String> = docs.iter().map(|(k, _, _)| version_id(&env, k)).collect();
    env.write_manifest(&manifest(&docs, ""));
    let run = rotate(&env);
    assert_eq!(run.code, 0, "{}", run.all());
    let new = env.held_default(&repo("acme/web")).unwrap();
    assert_ne!(new.id, old.id);
    for (key, _, before) in &docs {
        let now = object(&env, key);
        let expected = before
            .replace(&old.id, &new.id)
            .replace(&old.secret, &new.secret);
        assert_eq!(now.text, expected, "{key}: only the two values change");
        assert_eq!(
            now.content_type.as_deref(),
            Some("text/plain; charset=utf-8"),
            "{key}"
        );
        assert_eq!(now.owner.as_deref(), Some("platform"), "{key}");
        assert_eq!(now.encryption, Some(ServerSideEncryption::AwsKms), "{key}");
        assert_eq!(now.kms_key.as_deref(), Some(key_arn.as_str()), "{key}");
        assert_eq!(
            puts(&env, key),
            2,
            "{key}: the set-up's put and one for the pair"
        );
    }
    for ((key, _, before), first) in docs.iter().zip(&first) {
        assert_eq!(
            &version_text(&env, key, first),
            before,
            "{key}: the earlier version kept"
        );
    }
    assert!(
        run.stdout
            .contains("S3 object s3://acme-config/web/prod.json (json)"),
        "{}",
        run.stdout
    );
    // `status` reads what each object holds.
    let status = env.action(&env.admin, &[("command", "status")]);
    assert_eq!(status.code, 0, "{}", status.all());
    for (key, _, _) in &docs {
        let line = status
            .stdout
            .lines()
            .find(|l| l.contains(&format!("consumer s3://{BUCKET}/{key} ")))
            .unwrap_or_else(|| panic!("{key}: {}", status.stdout));
        assert!(line.ends_with(&format!("holds {}", new.id)), "{line}");
    }
    env.assert_no_leaks();
}

#[test]
fn a_failed_verification_puts_each_earlier_document_back() {
    let env = TestEnv::new();
    let old = setup(&env);
    let docs = documents(&old);
    bucket(&env, false, &docs);
    env.github.add_workflow(
        "acme/web",
        "verify.yml",
        WorkflowSpec {
            environment: None,
            mode: RunMode::Fail,
        },
    );
    env.write_manifest(&manifest(
        &docs,
        "    verify:\n      - repository: acme/web\n        workflow: verify.yml\n",
    ));
    let run = rotate(&env);
    assert_eq!(run.code, 1, "{}", run.all());
    for (key, _, before) in &docs {
        assert_eq!(&object(&env, key).text, before, "{key}: back byte for byte");
    }
    // The objects' earlier text is known (read before the write): each is put back. The
    // GitHub secret's is not (this step does not run with the old key): it keeps the new key.
    assert_eq!(
        run.stdout.matches("restored to the old key").count(),
        docs.len(),
        "{}",
        run.stdout
    );
    env.assert_no_leaks();
}

/// A rotation of web/prod.json while another writer changes it between the tool's read and its
/// write, `times` times (each adds `-x` to its name).
fn race(
    env: &TestEnv,
    versioned: bool,
    times: u32,
) -> (Key, Vec<(&'static str, &'static str, String)>, Run) {
    let old = setup(env);
    let docs = documents(&old)[..1].to_vec();
    bucket(env, versioned, &docs);
    env.write_manifest(&manifest(&docs, ""));
    env.s3_writer(BUCKET, "web/prod.json", times, "\"web", "\"web-x");
    (old, docs, rotate(env))
}

#[test]
fn a_writer_between_read_and_write_is_read_again_once_and_its_change_kept() {
    let env = TestEnv::new();
    let (old, docs, run) = race(&env, true, 1);
    assert_eq!(run.code, 0, "{}", run.all());
    let new = env.held_default(&repo("acme/web")).unwrap();
    let expected = docs[0]
        .2
        .replace("\"web\"", "\"web-x\"")
        .replace(&old.id, &new.id)
        .replace(&old.secret, &new.secret);
    assert_eq!(object(&env, "web/prod.json").text, expected);
    assert_eq!(
        puts(&env, "web/prod.json"),
        3,
        "the set-up's, ours refused (theirs came first), ours again"
    );
    env.assert_no_leaks();
}

#[test]
fn a_second_writer_fails_the_write_which_is_compensated_keeping_their_change() {
    let env = TestEnv::new();
    let (old, _, run) = race(&env, false, 2);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("If-Match"), "{}", run.stderr);
    let text = object(&env, "web/prod.json").text;
    assert!(
        text.contains("\"web-x-x\""),
        "their two changes are kept: {text}"
    );
    assert!(
        text.contains(&old.id) && text.contains(&old.secret),
        "the old, working key"
    );
    let held = env.held_default(&repo("acme/web")).unwrap();
    assert_eq!(held.id, old.id, "acme/web was never written");
    assert!(env.sts_accepts(&held));
    env.assert_no_leaks();
}

#[test]
fn what_cannot_be_written_safely_is_refused_before_anything_changes() {
    let env = TestEnv::new();
    let old = setup(&env);
    let docs = documents(&old);
    bucket(&env, false, &docs[..1]);
    let s3 = env.s3();
    let put = |key: &str, text: String, sse: Option<ServerSideEncryption>| {
        runtime().block_on(async {
            s3.put_object()
                .bucket(BUCKET)
                .key(key)
                .body(ByteStream::from(text.into_bytes()))
                .set_server_side_encryption(sse)
                .send()
                .await
                .unwrap();
        })
    };
    // The bucket encrypts with KMS by default: this one was put with S3's own keys instead.
    put(
        "plain.json",
        docs[0].2.clone(),
        Some(ServerSideEncryption::Aes256),
    );
    put("broken.json", "{\"aws\": {\"key_id\": ".to_owned(), None);
    // Tags a put would drop.
    runtime().block_on(async {
        s3.put_object()
            .bucket(BUCKET)
            .key("tagged.json")
            .body(ByteStream::from(docs[0].2.clone().into_bytes()))
            .tagging("team=web")
            .send()
            .await
            .unwrap();
    });
    // Whoever may put the object could make it huge: refused unread.
    put(
        "huge.json",
        format!("{{\"pad\": \"{}\"}}", "x".repeat(2 * 1024 * 1024)),
        None,
    );
    let fields = "fields: { access-key-id: aws.key_id, secret-access-key: aws.secret }";
    for (key, fields, says) in [
        ("plain.json", fields, "not encrypted with KMS"),
        (
            "web/prod.json",
            "fields: { access-key-id: aws.key_id, secret-access-key: aws.nothing }",
            "no field `aws.nothing`",
        ),
        ("broken.json", fields, "not a JSON document (line 1"),
        ("huge.json", fields, "at most 1048576 bytes"),
        ("tagged.json", fields, "1 object tags"),
        ("missing.json", fields, "does not exist"),
    ] {
        env.write_manifest(&manifest(&[(key, fields, String::new())], ""));
        let run = env.changes_nothing(USER, 2, || rotate(&env));
        assert!(run.stderr.contains(says), "{key}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("s3://{BUCKET}/{key}")),
            "{key}: located: {}",
            run.stderr
        );
    }
    assert_eq!(object(&env, "web/prod.json").text, docs[0].2);
    // A bucket that does not exist.
    env.write_manifest(
        &manifest(&[("x.json", fields, String::new())], "").replace(BUCKET, "acme-nothing"),
    );
    let run = env.changes_nothing(USER, 2, || rotate(&env));
    assert!(
        run.stderr.contains("s3://acme-nothing/x.json"),
        "{}",
        run.stderr
    );
    env.assert_no_leaks();
}

#[test]
fn a_script_signing_with_the_credentials_file_works_after_the_rotation() {
    let env = TestEnv::new();
    let old = setup(&env);
    let docs: Vec<_> = documents(&old)
        .into_iter()
        .filter(|(k, _, _)| *k == "backup/credentials")
        .collect();
    bucket(&env, false, &docs);
    env.write_manifest(&manifest(&docs, ""));
    let run = rotate(&env);
    assert_eq!(run.code, 0, "{}", run.all());
    // The backup host's script: fetch the file, then sign with its profile (boto3 reads the
    // AWS CLI's credentials file).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials");
    std::fs::write(&file, object(&env, "backup/credentials").text).unwrap();
    let script = "import boto3, os\n\
        s = boto3.Session(profile_name='backup')\n\
        print(s.client('sts', endpoint_url=os.environ['ENDPOINT'], region_name='us-east-1').get_caller_identity()['Arn'])\n";
    let out = std::process::Command::new(python())
        .arg("-c")
        .arg(script)
        .env_clear()
        .env("AWS_SHARED_CREDENTIALS_FILE", &file)
        .env("AWS_CONFIG_FILE", dir.path().join("none"))
        .env("ENDPOINT", env.moto_url())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!(":user/{USER}")),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let new = env.held_default(&repo("acme/web")).unwrap();
    assert!(
        std::fs::read_to_string(&file).unwrap().contains(&new.id),
        "the file holds the new key"
    );
    env.assert_no_leaks();
}

/// The rotator allowed the shipped actions and the S3 statement's (`policy` names them on the
/// object's ARN; moto checks actions only): a rotation works, and without either S3 action it
/// fails with the object as it was.
#[test]
fn the_rotator_needs_exactly_the_objects_get_and_put() {
    let mut base: Vec<String> = shipped_actions();
    base.extend(
        aws_key_rotator::policy::S3_KMS_ACTIONS
            .iter()
            .map(|a| a.to_string()),
    );
    for missing in [None, Some("s3:GetObject"), Some("s3:PutObject")] {
        let env = TestEnv::new();
        let old = setup(&env);
        let docs = documents(&old)[2..3].to_vec();
        bucket(&env, false, &docs);
        env.write_manifest(&manifest(&docs, ""));
        let mut actions: Vec<&str> = base.iter().map(String::as_str).collect();
        actions.extend(
            aws_key_rotator::policy::S3_ACTIONS
                .iter()
                .filter(|a| Some(**a) != missing),
        );
        env.user("rotator", &actions);
        let rotator = env.create_key("rotator");
        env.remember(&rotator.secret);
        let run = env.action(&rotator, &[("command", "rotate"), ("force", "true")]);
        let text = object(&env, docs[0].0).text;
        match missing {
            None => {
                assert_eq!(run.code, 0, "{}", run.all());
                assert!(!text.contains(&old.id), "rotated");
            }
            Some(action) => {
                assert_ne!(run.code, 0, "without {action}: {}", run.all());
                assert_eq!(text, docs[0].2, "without {action}: the object as it was");
                assert!(run.stderr.contains("AccessDenied"), "{}", run.stderr);
            }
        }
        env.assert_no_leaks();
    }
}
