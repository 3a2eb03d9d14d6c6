//! S3 config objects (CONTRACT §18): a readable store that keeps the pair together. A write
//! reads the object with its ETag, replaces exactly the two values ([`document`]), and puts it
//! back with `If-Match` on that ETag, keeping its content type, metadata and KMS key; a
//! conflict is read again once. The object must be encrypted with KMS.
//!
//! Who else writes the object: anyone the bucket lets put it. Its text is believed only as a
//! document of its format; its values are only ever compared and replaced, never run.

use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use crate::adapters::aws_stores::{PerRegion, store_error_for};
use crate::manifest::{DocumentFormat, Scope};
use crate::ports::{StoreError, StoreErrorKind};

pub mod document;

/// The policy statement of docs/iam-policy.json that grants these actions.
const STATEMENT: &str = "OptionalS3ConfigObjects";

/// The largest object edited: app config, not data. Whoever may put the object could make it
/// huge; it is refused unread.
const LARGEST: i64 = 1024 * 1024;

/// The read of one field is followed at once by the read of the other: both from one version.
const PAIRED_READ: Duration = Duration::from_secs(5);

pub struct S3Objects {
    config: SdkConfig,
    clients: PerRegion<aws_sdk_s3::Client>,
    /// The object a read just fetched, for the read of its other field that follows; any write
    /// forgets it.
    last_read: Mutex<Option<(Scope, Fetched, Instant)>>,
}

/// An object as GetObject answered: its text (which holds the secret) and what a put keeps.
#[derive(Clone)]
struct Fetched {
    text: SecretString,
    etag: Option<String>,
    last_modified: Option<DateTime<Utc>>,
    content_type: Option<String>,
    metadata: Option<std::collections::HashMap<String, String>>,
    cache_control: Option<String>,
    content_disposition: Option<String>,
    content_encoding: Option<String>,
    content_language: Option<String>,
    encryption: Option<ServerSideEncryption>,
    kms_key: Option<String>,
    bucket_key: Option<bool>,
    storage_class: Option<aws_sdk_s3::types::StorageClass>,
    tags: i32,
}

struct Location<'a> {
    bucket: &'a str,
    key: &'a str,
    format: DocumentFormat,
    region: &'a Option<String>,
}

fn location(scope: &Scope) -> Result<Location<'_>, StoreError> {
    match scope {
        Scope::S3 {
            bucket,
            key,
            format,
            region,
        } => Ok(Location {
            bucket,
            key,
            format: *format,
            region,
        }),
        other => Err(rejected(format!("{other} is not an S3 object"))),
    }
}

fn rejected(message: String) -> StoreError {
    StoreError {
        kind: StoreErrorKind::Rejected,
        message,
        uncertain: false,
        status: None,
    }
}

fn to_chrono(t: &aws_sdk_s3::primitives::DateTime) -> DateTime<Utc> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos()).unwrap_or_default()
}

impl S3Objects {
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            config: config.clone(),
            clients: PerRegion::new(config.region().cloned()),
            last_read: Mutex::new(None),
        }
    }

    /// Against an endpoint of one's own (an emulator, a gateway), buckets are addressed by
    /// path: a bucket's virtual host would not resolve there.
    pub(crate) fn client(&self, region: &Option<String>) -> aws_sdk_s3::Client {
        self.clients.get(region, |r| {
            let own_endpoint = self.config.endpoint_url().is_some()
                || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
            let conf = aws_sdk_s3::config::Builder::from(&self.config)
                .region(r)
                .force_path_style(own_endpoint)
                .request_checksum_calculation(
                    aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
                )
                .response_checksum_validation(
                    aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired,
                );
            aws_sdk_s3::Client::from_conf(conf.build())
        })
    }

    async fn fetch(&self, scope: &Scope) -> Result<Fetched, StoreError> {
        let at = location(scope)?;
        let what = format!("reading {scope}");
        let out = self
            .client(at.region)
            .get_object()
            .bucket(at.bucket)
            .key(at.key)
            .send()
            .await
            .map_err(|e| {
                let mut err = store_error_for(STATEMENT, &what, e);
                if err.kind == StoreErrorKind::Forbidden {
                    err.message.push_str(" (without s3:ListBucket, S3 also answers 403 for an object that does not exist)");
                }
                err
            })?;
        if let Some(n) = out.content_length.filter(|n| *n > LARGEST) {
            return Err(rejected(format!(
                "{scope}: the object is {n} bytes; a config object this tool edits is at most {LARGEST} bytes (1 MiB): keep the key in a smaller object"
            )));
        }
        let bytes = out.body.collect().await.map_err(|e| StoreError {
            kind: StoreErrorKind::Unavailable,
            message: format!("{what}: the body was cut short: {e}"),
            uncertain: false,
            status: None,
        })?;
        let text = String::from_utf8(bytes.into_bytes().to_vec()).map_err(|_| {
            rejected(format!(
                "{scope}: the object is not UTF-8 text: a {} document is text",
                at.format
            ))
        })?;
        Ok(Fetched {
            text: SecretString::from(text),
            etag: out.e_tag,
            last_modified: out.last_modified.as_ref().map(to_chrono),
            content_type: out.content_type,
            metadata: out.metadata,
            cache_control: out.cache_control,
            content_disposition: out.content_disposition,
            content_encoding: out.content_encoding,
            content_language: out.content_language,
            encryption: out.server_side_encryption,
            kms_key: out.ssekms_key_id,
            bucket_key: out.bucket_key_enabled,
            storage_class: out.storage_class,
            tags: out.tag_count.unwrap_or(0),
        })
    }

    /// The object's refusal to hold a secret unencrypted by KMS (CONTRACT §18), and a document
    /// it cannot edit; asked before anything is written.
    pub async fn fit_for_secret(&self, scope: &Scope, name: &str) -> Result<(), StoreError> {
        let at = location(scope)?;
        let object = self.fetch(scope).await?;
        if !is_kms(object.encryption.as_ref()) {
            return Err(rejected(format!(
                "{scope} is {}, not encrypted with KMS: the secret access key would be kept under a key anyone who may read the bucket uses. Set the bucket's default encryption to SSE-KMS (aws s3api put-bucket-encryption) or copy the object onto itself with --sse aws:kms, then run again",
                match &object.encryption {
                    Some(e) => format!("encrypted with {}", e.as_str()),
                    None => "not encrypted".to_owned(),
                }
            )));
        }
        // A put makes a new object: its tags would not come along (a policy or a lifecycle rule
        // that reads them would then treat the config otherwise).
        if object.tags > 0 {
            return Err(rejected(format!(
                "{scope} has {} object tags, which the put of the new key would drop: move them to the bucket (or keep the key in an untagged object), then run again",
                object.tags
            )));
        }
        document::read(at.format, object.text.expose_secret(), name)
            .map_err(|e| rejected(format!("{scope}: {e}")))?
            .ok_or_else(|| rejected(format!("{scope}: {}", document::missing(at.format, name))))
            .map(|_| ())
    }

    /// When the object was last written, if it holds `name`.
    pub async fn updated_at(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at = location(scope)?;
        let object = self.fetch(scope).await?;
        let holds = document::read(at.format, object.text.expose_secret(), name)
            .map_err(|e| rejected(format!("{scope}: {e}")))?
            .is_some();
        Ok(object.last_modified.filter(|_| holds))
    }

    /// One field's value. A field the document does not have is an error naming it (the
    /// manifest points at it: CONTRACT §18 refuses before anything changes).
    pub async fn read(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<Option<SecretString>, StoreError> {
        let at = location(scope)?;
        let cached = {
            let mut last = self.last_read.lock().await;
            match last.take() {
                Some((s, object, when)) if &s == scope && when.elapsed() < PAIRED_READ => {
                    Some(object)
                }
                _ => None,
            }
        };
        let object = match cached {
            Some(o) => o,
            None => {
                let o = self.fetch(scope).await?;
                *self.last_read.lock().await = Some((scope.clone(), o.clone(), Instant::now()));
                o
            }
        };
        match document::read(at.format, object.text.expose_secret(), name) {
            Ok(Some(v)) => Ok(Some(SecretString::from(v))),
            Ok(None) => Err(rejected(format!(
                "{scope}: {}",
                document::missing(at.format, name)
            ))),
            Err(e) => Err(rejected(format!("{scope}: {e}"))),
        }
    }

    /// Writes both values in one put, conditional on the version read; a conflict is read
    /// again and tried once more, then refused with nothing of this run written.
    pub async fn put_pair(
        &self,
        scope: &Scope,
        names: [&str; 2],
        values: [&SecretString; 2],
    ) -> Result<(), StoreError> {
        let at = location(scope)?;
        let what = format!("writing {scope}");
        *self.last_read.lock().await = None;
        for attempt in 0..2 {
            let object = self.fetch(scope).await?;
            if !is_kms(object.encryption.as_ref()) {
                return Err(rejected(format!(
                    "{what}: the object is no longer encrypted with KMS: nothing was written"
                )));
            }
            let text = document::replace(
                at.format,
                object.text.expose_secret(),
                &[
                    (names[0], values[0].expose_secret()),
                    (names[1], values[1].expose_secret()),
                ],
            )
            .map_err(|e| rejected(format!("{what}: {e}")))?;
            let mut put = self
                .client(at.region)
                .put_object()
                .bucket(at.bucket)
                .key(at.key)
                .body(ByteStream::from(text.into_bytes()))
                .set_content_type(object.content_type)
                .set_metadata(object.metadata)
                .set_cache_control(object.cache_control)
                .set_content_disposition(object.content_disposition)
                .set_content_encoding(object.content_encoding)
                .set_content_language(object.content_language)
                .set_server_side_encryption(object.encryption)
                .set_ssekms_key_id(object.kms_key)
                .set_bucket_key_enabled(object.bucket_key)
                .set_storage_class(object.storage_class);
            if let Some(etag) = object.etag {
                put = put.if_match(etag);
            }
            match put.send().await {
                Ok(_) => return Ok(()),
                Err(e) if conflict(e.code()) && attempt == 0 => continue,
                Err(e) if conflict(e.code()) => {
                    // The SDK resends a put whose answer was lost; the resend meets this run's
                    // own new ETag. The object then already holds the pair.
                    if self.holds(scope, names, values).await {
                        return Ok(());
                    }
                    return Err(StoreError {
                        kind: StoreErrorKind::Rejected,
                        message: format!(
                            "{what}: another writer changed it between this run's read and its write, twice (If-Match): nothing of this run was written"
                        ),
                        uncertain: false,
                        status: Some(412),
                    });
                }
                Err(e) => return Err(store_error_for(STATEMENT, &what, e)),
            }
        }
        unreachable!("the loop returns")
    }
}

impl S3Objects {
    /// Whether the object holds `values` in `names` now.
    async fn holds(&self, scope: &Scope, names: [&str; 2], values: [&SecretString; 2]) -> bool {
        let Ok(at) = location(scope) else {
            return false;
        };
        let Ok(object) = self.fetch(scope).await else {
            return false;
        };
        names.iter().zip(values).all(|(name, value)| {
            document::read(at.format, object.text.expose_secret(), name)
                .ok()
                .flatten()
                .is_some_and(|v| v == value.expose_secret())
        })
    }
}

fn is_kms(encryption: Option<&ServerSideEncryption>) -> bool {
    matches!(
        encryption,
        Some(ServerSideEncryption::AwsKms | ServerSideEncryption::AwsKmsDsse)
    )
}

/// S3's answers to a put whose `If-Match` no longer holds.
fn conflict(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("PreconditionFailed" | "ConditionalRequestConflict")
    )
}
