//! The AWS secret stores on the SDK: one Secrets Manager secret whose JSON `SecretString` holds
//! the pair (its other fields kept), and SSM Parameter Store parameters (their type and KMS key
//! kept). Both are readable: the core reads the old values before writing, and reads back.
//! [`crate::adapters::stores::Stores`] puts them beside GitHub's and Vault's behind one port.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_config::{Region, SdkConfig};
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use crate::manifest::Scope;
use crate::ports::{SecretStore, StoreError, StoreErrorKind};
use crate::seal::ScopeKey;

mod listing;

pub struct AwsStores {
    config: SdkConfig,
    /// S3 config objects (CONTRACT §18).
    pub s3: crate::adapters::aws::s3::S3Objects,
    sm: PerRegion<aws_sdk_secretsmanager::Client>,
    ssm: PerRegion<aws_sdk_ssm::Client>,
}

/// One client per region a consumer names (`None`: the step's own region), made on first use.
pub(crate) struct PerRegion<C> {
    clients: Mutex<HashMap<Option<String>, C>>,
    /// The step's own region.
    default: Option<Region>,
}

impl<C: Clone> PerRegion<C> {
    pub(crate) fn new(default: Option<Region>) -> Self {
        Self {
            clients: Mutex::new(HashMap::new()),
            default,
        }
    }

    /// The client for `region`, made by `make` with the region to use.
    pub(crate) fn get(&self, region: &Option<String>, make: impl FnOnce(Option<Region>) -> C) -> C {
        let mut clients = self.clients.lock().expect("not poisoned");
        clients
            .entry(region.clone())
            .or_insert_with(|| {
                make(
                    region
                        .clone()
                        .map(Region::new)
                        .or_else(|| self.default.clone()),
                )
            })
            .clone()
    }
}

fn to_chrono(t: &aws_sdk_secretsmanager::primitives::DateTime) -> DateTime<Utc> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos()).unwrap_or_default()
}

/// An SDK error as a store error, with what was being done.
fn store_error<E>(
    what: &str,
    err: SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    store_error_for("OptionalAwsStores", what, err)
}

/// [`store_error`], naming the policy statement that grants the store's actions.
pub(crate) fn store_error_for<E>(
    statement: &str,
    what: &str,
    err: SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = match &err {
        SdkError::ServiceError(s) => Some(s.raw().status().as_u16()),
        SdkError::ResponseError(r) => Some(r.raw().status().as_u16()),
        _ => None,
    };
    let code = err.code().unwrap_or_default().to_owned();
    let detail = err.message().unwrap_or_default().to_owned();
    let (kind, uncertain) = match (code.as_str(), status) {
        ("ResourceNotFoundException" | "ParameterNotFound" | "NoSuchKey" | "NoSuchBucket", _) => {
            (StoreErrorKind::NotFound, false)
        }
        (
            "AccessDeniedException"
            | "UnrecognizedClientException"
            | "InvalidClientTokenId"
            | "AccessDenied",
            _,
        )
        | ("", Some(403)) => (StoreErrorKind::Forbidden, false),
        (_, Some(s)) if s < 500 => (StoreErrorKind::Rejected, false),
        // A 5xx, a timeout or a broken connection: a write may have landed.
        _ => (StoreErrorKind::Unavailable, true),
    };
    let mut message = format!(
        "{what}: AWS answered {}",
        if code.is_empty() { "an error" } else { &code }
    );
    if let Some(s) = status {
        message.push_str(&format!(" (HTTP {s})"));
    }
    if !detail.is_empty() {
        message.push_str(&format!(": {detail}"));
    }
    if kind == StoreErrorKind::Forbidden {
        message.push_str(&format!(" — grant this identity the store's actions (see docs/iam-policy.json, statement {statement})"));
    }
    if status.is_none() {
        message = crate::adapters::aws::with_sources(message, &err);
    }
    StoreError {
        kind,
        message,
        uncertain,
        status,
    }
}

fn rejected(what: &str, why: &str) -> StoreError {
    StoreError {
        kind: StoreErrorKind::Rejected,
        message: format!("{what}: {why}"),
        uncertain: false,
        status: None,
    }
}

impl AwsStores {
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            config: config.clone(),
            s3: crate::adapters::aws::s3::S3Objects::new(config),
            sm: PerRegion::new(config.region().cloned()),
            ssm: PerRegion::new(config.region().cloned()),
        }
    }

    fn sm(&self, region: &Option<String>) -> aws_sdk_secretsmanager::Client {
        self.sm.get(region, |r| {
            let conf = aws_sdk_secretsmanager::config::Builder::from(&self.config).region(r);
            aws_sdk_secretsmanager::Client::from_conf(conf.build())
        })
    }

    fn ssm(&self, region: &Option<String>) -> aws_sdk_ssm::Client {
        self.ssm.get(region, |r| {
            let conf = aws_sdk_ssm::config::Builder::from(&self.config).region(r);
            aws_sdk_ssm::Client::from_conf(conf.build())
        })
    }

    /// The secret's JSON object (its current version).
    async fn sm_object(
        &self,
        secret: &str,
        region: &Option<String>,
        what: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, StoreError> {
        let out = self
            .sm(region)
            .get_secret_value()
            .secret_id(secret)
            .send()
            .await
            .map_err(|e| store_error(what, e))?;
        let Some(text) = out.secret_string() else {
            return Err(rejected(
                what,
                "the secret holds binary data: the tool keeps the pair as fields of a JSON object in SecretString",
            ));
        };
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(map)) => Ok(map),
            _ => Err(rejected(
                what,
                "its SecretString is not a JSON object: the tool keeps the pair as fields of one (other fields are kept)",
            )),
        }
    }
}

impl SecretStore for AwsStores {
    async fn public_key(&self, scope: &Scope) -> Result<ScopeKey, StoreError> {
        Err(rejected(
            &format!("reading the public key of {scope}"),
            "AWS stores have none",
        ))
    }

    async fn updated_at(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let what = format!("reading when {name} of {scope} was written");
        match scope {
            Scope::SecretsManager { secret, region } => {
                let out = self
                    .sm(region)
                    .describe_secret()
                    .secret_id(secret)
                    .send()
                    .await
                    .map_err(|e| store_error(&what, e))?;
                Ok(out
                    .last_changed_date()
                    .or(out.created_date())
                    .map(to_chrono))
            }
            Scope::ParameterStore { region } => {
                let out = self
                    .ssm(region)
                    .get_parameter()
                    .name(name)
                    .send()
                    .await
                    .map_err(|e| store_error(&what, e))?;
                Ok(out
                    .parameter()
                    .and_then(|p| p.last_modified_date())
                    .map(to_chrono))
            }
            _ => Err(rejected(&what, "not an AWS store")),
        }
    }

    async fn read(&self, scope: &Scope, name: &str) -> Result<Option<SecretString>, StoreError> {
        let what = format!("reading {name} of {scope}");
        match scope {
            Scope::SecretsManager { secret, region } => {
                let object = self.sm_object(secret, region, &what).await?;
                match object.get(name) {
                    None => Ok(None),
                    Some(serde_json::Value::String(v)) => Ok(Some(SecretString::from(v.clone()))),
                    Some(_) => Err(rejected(&what, "the field is not a string")),
                }
            }
            Scope::ParameterStore { region } => {
                let out = self
                    .ssm(region)
                    .get_parameter()
                    .name(name)
                    .with_decryption(true)
                    .send()
                    .await
                    .map_err(|e| store_error(&what, e))?;
                Ok(out
                    .parameter()
                    .and_then(|p| p.value())
                    .map(|v| SecretString::from(v.to_owned())))
            }
            _ => Err(rejected(&what, "not an AWS store")),
        }
    }

    async fn fit_for_secret(&self, scope: &Scope, name: &str) -> Result<(), StoreError> {
        let Scope::ParameterStore { region } = scope else {
            return Ok(());
        };
        let what = format!("reading the type of {name} in {scope}");
        let out = self
            .ssm(region)
            .get_parameter()
            .name(name)
            .send()
            .await
            .map_err(|e| store_error(&what, e))?;
        match out.parameter().and_then(|p| p.r#type()) {
            Some(aws_sdk_ssm::types::ParameterType::SecureString) => Ok(()),
            other => Err(rejected(
                &format!("{name} in {scope}"),
                &format!(
                    "it is a {} parameter, which keeps the secret access key in plaintext (and in its history): make it a SecureString (delete it and create it again with --type SecureString), then run again",
                    other.map(|t| t.as_str()).unwrap_or("untyped")
                ),
            )),
        }
    }

    async fn put(
        &self,
        scope: &Scope,
        _key: Option<&ScopeKey>,
        name: &str,
        value: &SecretString,
    ) -> Result<(), StoreError> {
        let what = format!("writing {name} in {scope}");
        match scope {
            Scope::SecretsManager { secret, region } => {
                // Every other field of the JSON is kept.
                let mut object = self.sm_object(secret, region, &what).await?;
                object.insert(
                    name.to_owned(),
                    serde_json::Value::String(value.expose_secret().to_owned()),
                );
                let text = SecretString::from(serde_json::Value::Object(object).to_string());
                self.sm(region)
                    .put_secret_value()
                    .secret_id(secret)
                    .secret_string(text.expose_secret())
                    .send()
                    .await
                    .map_err(|e| store_error(&what, e))?;
                Ok(())
            }
            Scope::ParameterStore { region } => {
                let client = self.ssm(region);
                // Keep the parameter's type and KMS key.
                let described = client
                    .describe_parameters()
                    .parameter_filters(
                        aws_sdk_ssm::types::ParameterStringFilter::builder()
                            .key("Name")
                            .option("Equals")
                            .values(name)
                            .build()
                            .map_err(|e| rejected(&what, &e.to_string()))?,
                    )
                    .send()
                    .await
                    .map_err(|e| store_error(&what, e))?;
                let Some(meta) = described.parameters().first() else {
                    return Err(StoreError {
                        kind: StoreErrorKind::NotFound,
                        message: format!("{what}: the parameter does not exist"),
                        uncertain: false,
                        status: None,
                    });
                };
                let mut put = client
                    .put_parameter()
                    .name(name)
                    .value(value.expose_secret())
                    .overwrite(true);
                if let Some(t) = meta.r#type() {
                    put = put.r#type(t.clone());
                }
                if let Some(k) = meta.key_id() {
                    put = put.key_id(k);
                }
                put.send().await.map_err(|e| store_error(&what, e))?;
                Ok(())
            }
            _ => Err(rejected(&what, "not an AWS store")),
        }
    }
}
