//! `s3: { bucket, key }` with its `format`, `fields` or `profile` (CONTRACT §18): the two
//! fields of the document that hold the pair become the consumer's secret names.

use super::*;

/// The variables a dotenv document holds the pair in unless `fields` says otherwise.
const DOTENV_DEFAULTS: [&str; 2] = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"];

impl Validator<'_> {
    pub(super) fn s3_consumer(
        &self,
        at: &serde_saphyr::Location,
        c: raw::RawConsumer,
    ) -> Result<Consumer, ManifestError> {
        const S3_KEYS: &[&str] = &["s3", "format", "fields", "profile", "region"];
        if let Some(key) = c.set_keys().into_iter().find(|k| !S3_KEYS.contains(k)) {
            let fix = if key == "secrets" {
                "an `s3` consumer names where the pair is with `fields` (access-key-id, secret-access-key), not `secrets`".to_owned()
            } else {
                format!("`{key}` does not belong to an `s3` consumer: make it its own entry")
            };
            return Err(self.err(at, fix));
        }
        let object = c.s3.expect("called for s3 consumers");
        if !valid_bucket(&object.bucket) {
            return Err(self.err(
                at,
                format!("s3 bucket {:?} is not a bucket name (3 to 63 lowercase letters, digits, `.` and `-`)", object.bucket),
            ));
        }
        let key = object.key.as_str();
        if key.is_empty()
            || key.starts_with('/')
            || key.len() > 1024
            || key.chars().any(char::is_control)
        {
            return Err(self.err(
                at,
                format!("s3 key {key:?} is not an object key: name it without a leading `/`, e.g. `web/prod.json`"),
            ));
        }
        // IAM reads these in a resource ARN as a wildcard or a policy variable: the policy for
        // this object would reach others.
        if key.contains(['*', '?', '$']) {
            return Err(self.err(
                at,
                format!("s3 key {key:?} holds `*`, `?` or `$`, which an IAM policy reads as a wildcard or a variable: keep the key in an object whose name has none"),
            ));
        }
        if let Some(r) = &c.region
            && !valid_region(r)
        {
            return Err(self.err(
                at,
                format!("region {r:?} is not an AWS region name (like eu-west-1)"),
            ));
        }
        let format = match c.format.or_else(|| DocumentFormat::from_name(key)) {
            Some(f) => f,
            None => {
                return Err(self.err(
                    at,
                    format!("s3 object {key:?}: add `format: json`, `yaml`, `dotenv`, `ini` or `credentials` (its name does not tell)"),
                ));
            }
        };
        let secrets = self.s3_fields(at, format, c.fields, c.profile)?;
        Ok(Consumer {
            pull_requests: true,
            scope: Scope::S3 {
                bucket: object.bucket,
                key: object.key,
                format,
                region: c.region,
            },
            secrets,
        })
    }

    /// The two fields, checked for the format.
    fn s3_fields(
        &self,
        at: &serde_saphyr::Location,
        format: DocumentFormat,
        fields: Option<SecretNames>,
        profile: Option<String>,
    ) -> Result<SecretNames, ManifestError> {
        if profile.is_some() && format != DocumentFormat::Credentials {
            return Err(self.err(at, "`profile` belongs to `format: credentials`: drop it, or name the section in `fields` (SECTION.KEY)"));
        }
        let names = match (format, fields) {
            (DocumentFormat::Credentials, Some(_)) => {
                return Err(self.err(at, "a credentials file's fields are its profile's aws_access_key_id and aws_secret_access_key: name the profile with `profile`, not `fields`"));
            }
            (DocumentFormat::Credentials, None) => {
                let p = profile.unwrap_or_else(|| "default".to_owned());
                if p.trim() != p || p.is_empty() || p.contains([']', '[', '\n', '\r']) {
                    return Err(self.err(at, format!("profile {p:?} is not a profile name")));
                }
                SecretNames {
                    access_key_id: format!("{p}.aws_access_key_id"),
                    secret_access_key: format!("{p}.aws_secret_access_key"),
                }
            }
            (DocumentFormat::Dotenv, None) => SecretNames {
                access_key_id: DOTENV_DEFAULTS[0].to_owned(),
                secret_access_key: DOTENV_DEFAULTS[1].to_owned(),
            },
            (_, None) => {
                return Err(self.err(at, format!("a {format} object needs `fields: {{ access-key-id: PATH, secret-access-key: PATH }}`: where in the document the pair is")));
            }
            (_, Some(f)) => f,
        };
        for field in [&names.access_key_id, &names.secret_access_key] {
            if let Err(why) = check_field(format, field) {
                return Err(self.err(at, format!("field {field:?} {why}")));
            }
        }
        if names.access_key_id == names.secret_access_key {
            return Err(self.err(at, "the two fields are the same: the pair needs two places"));
        }
        Ok(names)
    }
}

fn check_field(format: DocumentFormat, field: &str) -> Result<(), &'static str> {
    let plain = |s: &str| !s.is_empty() && s.trim() == s && !s.chars().any(char::is_control);
    match format {
        DocumentFormat::Json | DocumentFormat::Yaml => {
            if field.split('.').all(plain) {
                Ok(())
            } else {
                Err("is not a dotted path of keys (like aws.key_id)")
            }
        }
        DocumentFormat::Dotenv => {
            let mut chars = field.chars();
            let first = chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
            if first && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
                Ok(())
            } else {
                Err("is not a variable name (letters, digits, `_`)")
            }
        }
        DocumentFormat::Ini | DocumentFormat::Credentials => match field.rsplit_once('.') {
            Some((section, key)) if plain(section) && plain(key) && !key.contains('=') => Ok(()),
            _ => Err("is not SECTION.KEY (like default.aws_access_key_id)"),
        },
    }
}

/// S3's rule for bucket names (general purpose buckets).
fn valid_bucket(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !name.contains("..")
}
