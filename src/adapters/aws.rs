//! `Iam` on the AWS SDK (aws-sdk-iam, aws-sdk-sts), credentials from the SDK's default chain.

mod accounts;
mod roles;
pub mod s3;
pub mod trail;

pub use accounts::{AccountSession, NotReached, session_name};

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_iam::types::StatusType;
use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use crate::model::{KeyInfo, KeyStatus, LastUse};
use crate::ports::{Caller, Iam, IamError, IamErrorKind, NewKey, StepKey};

pub struct Aws {
    config: SdkConfig,
    /// Where requests go, in words for messages about reaching it.
    endpoint: String,
    iam: aws_sdk_iam::Client,
    sts: aws_sdk_sts::Client,
    /// How long a new key may take to start working (IAM propagation).
    propagation: Duration,
    /// Through an account role (CONTRACT §15): the account every new key must prove to be in.
    account: Option<String>,
}

/// Loads the SDK configuration: default credential chain, `AWS_ENDPOINT_URL`, region
/// from the environment or `us-east-1`.
pub async fn load(propagation: Duration, call_timeout: Duration) -> Aws {
    let region = aws_config::meta::region::RegionProviderChain::default_provider()
        .or_else(Region::new("us-east-1"));
    // Every operation ends within the call timeout, retries included (CONTRACT §12): a call
    // that never answers is a lost answer, which the core settles, never a stalled run.
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(call_timeout.min(Duration::from_secs(10)))
        .operation_attempt_timeout(call_timeout)
        .operation_timeout(call_timeout)
        .build();
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .timeout_config(timeouts)
        .load()
        .await;
    Aws::from_config(config, propagation, None)
}

impl Aws {
    /// IAM and STS on `config`; with `account`, every new key must prove to be in it.
    fn from_config(config: SdkConfig, propagation: Duration, account: Option<String>) -> Self {
        let endpoint = match config.endpoint_url() {
            Some(url) => format!("{url} (from AWS_ENDPOINT_URL or the profile)"),
            None => "AWS's endpoints".to_owned(),
        };
        Aws {
            endpoint,
            iam: aws_sdk_iam::Client::new(&config),
            sts: aws_sdk_sts::Client::new(&config),
            config,
            propagation,
            account,
        }
    }

    /// The account of the ambient credentials, asked once (no retries: an identity that STS
    /// does not know fails its IAM calls with their own words).
    pub async fn account_once(&self) -> Option<String> {
        let out = self.sts.get_caller_identity().send().await.ok()?;
        out.account().filter(|a| !a.is_empty()).map(str::to_owned)
    }
}

fn to_chrono(t: &aws_sdk_iam::primitives::DateTime) -> DateTime<Utc> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos()).unwrap_or_default()
}

pub(crate) fn classify<E>(
    action: &str,
    endpoint: &str,
    err: SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> IamError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = match &err {
        SdkError::ServiceError(s) => Some(raw_status(s.raw())),
        SdkError::ResponseError(r) => Some(raw_status(r.raw())),
        _ => None,
    }
    .flatten();
    let code = err.code().map(str::to_owned);
    let detail = err.message().map(str::to_owned);
    let (kind, message) = match (code.as_deref(), status) {
        (Some("NoSuchEntity"), _) if matches!(action, "iam:ListAccessKeys" | "iam:CreateAccessKey" | "iam:ListUserTags") => {
            (IamErrorKind::NoSuchUser, "no such IAM user".to_owned())
        }
        (Some("NoSuchEntity"), _) if matches!(action, "iam:DeleteAccessKey" | "iam:UpdateAccessKey") => (
            IamErrorKind::NoSuchKey,
            format!("{action}: the access key no longer exists"),
        ),
        (Some("NoSuchEntity"), _) => (
            IamErrorKind::Other,
            format!("{action}: the access key no longer exists (another run may have changed it): run status"),
        ),
        (Some("LimitExceeded"), _) => (
            IamErrorKind::LimitExceeded,
            "the user already has two access keys (IAM allows two): run status, then deactivate and delete the old one".to_owned(),
        ),
        (Some(c @ ("InvalidClientTokenId" | "SignatureDoesNotMatch" | "UnrecognizedClientException" | "ExpiredToken")), _) => (
            IamErrorKind::Credentials,
            format!("AWS rejected the credentials ({c}): check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the role this step assumes"),
        ),
        (Some(c @ ("AccessDenied" | "AccessDeniedException")), _) => (
            IamErrorKind::Credentials,
            format!("AWS denied {action} ({c}): grant it to this identity (see docs/iam-policy.json)"),
        ),
        // Some emulators answer 403 with an error body the SDK cannot read.
        (None, Some(403)) => (
            IamErrorKind::Credentials,
            format!("AWS answered 403 to {action}: the credentials are invalid or not allowed to call it (see docs/iam-policy.json)"),
        ),
        _ => match unanswered(action, endpoint, &err, code.as_deref(), status) {
            Ok(found) => found,
            Err(e) => return e,
        },
    };
    let message = match detail {
        Some(d) if !d.is_empty() && kind != IamErrorKind::LimitExceeded => {
            format!("{message}: {d}")
        }
        _ => message,
    };
    IamError { kind, message }
}

/// `message` with the chain of the error's sources.
pub(crate) fn with_sources(mut message: String, err: &dyn std::error::Error) -> String {
    let mut source = err.source();
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    message
}

/// An error AWS did not answer in its own words: the endpoint unreachable, a request that could
/// not be built (`Err`: no credentials, said whole), or an answer without a known code.
fn unanswered<E>(
    action: &str,
    endpoint: &str,
    err: &SdkError<E, aws_smithy_runtime_api::http::Response>,
    code: Option<&str>,
    status: Option<u16>,
) -> Result<(IamErrorKind, String), IamError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => Ok((
            IamErrorKind::Unreachable,
            with_sources(format!("could not reach {endpoint} for {action}"), err),
        )),
        SdkError::ConstructionFailure(_) => {
            let m = with_sources(format!("{action} could not be sent"), err);
            if m.contains("credentials") || m.contains("Credentials") {
                return Err(IamError {
                    kind: IamErrorKind::Credentials,
                    message: format!(
                        "{m}. Provide AWS credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, or aws-actions/configure-aws-credentials)"
                    ),
                });
            }
            Ok((IamErrorKind::Other, m))
        }
        _ => Ok((
            IamErrorKind::Other,
            format!(
                "{action} failed: {}{}",
                code.unwrap_or("error"),
                status.map(|s| format!(" (HTTP {s})")).unwrap_or_default()
            ),
        )),
    }
}

/// CreateAccessKey and DeleteAccessKey are not idempotent: the SDK's standard retry would
/// resend them after a lost answer (a second key, or NoSuchEntity). They are sent once and
/// the core settles what happened by listing the keys.
fn sent_once() -> aws_sdk_iam::config::Builder {
    aws_sdk_iam::config::Builder::default()
        .retry_config(aws_sdk_iam::config::retry::RetryConfig::disabled())
}

fn raw_status(r: &aws_smithy_runtime_api::http::Response) -> Option<u16> {
    Some(r.status().as_u16())
}

impl Aws {
    /// The SDK configuration (credentials, region, endpoint) the other AWS clients share.
    pub fn config(&self) -> &SdkConfig {
        &self.config
    }

    /// The long-term key this process runs with, if any (session credentials have a token).
    pub async fn step_key(&self) -> Result<Option<StepKey>, IamError> {
        let creds = self.credentials().await?;
        if creds.session_token().is_some() {
            return Ok(None);
        }
        Ok(Some(StepKey {
            id: creds.access_key_id().to_owned(),
            secret: SecretString::from(creds.secret_access_key().to_owned()),
        }))
    }

    async fn credentials(&self) -> Result<Credentials, IamError> {
        let Some(provider) = self.config.credentials_provider() else {
            return Err(no_credentials("no credentials provider is configured"));
        };
        provider
            .provide_credentials()
            .await
            .map_err(|e| no_credentials(&e.to_string()))
    }

    /// The access key id of the ambient credentials (long-term or session).
    pub async fn key_id(&self) -> Result<String, IamError> {
        Ok(self.credentials().await?.access_key_id().to_owned())
    }

    /// STS GetCallerIdentity with the ambient credentials, retrying through IAM propagation.
    pub async fn whoami(&self) -> Result<Caller, IamError> {
        self.caller_with(&self.sts).await
    }

    async fn caller_with(&self, sts: &aws_sdk_sts::Client) -> Result<Caller, IamError> {
        let call = || async {
            let out = sts
                .get_caller_identity()
                .send()
                .await
                .map_err(|e| classify("sts:GetCallerIdentity", &self.endpoint, e))?;
            Ok::<_, IamError>(Caller {
                account: out.account().unwrap_or_default().to_owned(),
                arn: out.arn().unwrap_or_default().to_owned(),
            })
        };
        call.retry(
            ExponentialBuilder::new()
                .with_min_delay(Duration::from_millis(500))
                .with_max_delay(Duration::from_secs(10))
                .with_total_delay(Some(self.propagation))
                .without_max_times(),
        )
        .when(|e: &IamError| matches!(e.kind, IamErrorKind::Credentials | IamErrorKind::Other))
        .notify(|e, wait| {
            tracing::debug!(
                "STS refused ({e}); retrying in {}",
                crate::human::duration(wait)
            )
        })
        .await
    }
}

fn no_credentials(detail: &str) -> IamError {
    IamError {
        kind: IamErrorKind::Credentials,
        message: format!(
            "no AWS credentials: {detail}. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or AWS_PROFILE (in a workflow: run aws-actions/configure-aws-credentials in an earlier step)"
        ),
    }
}

impl Iam for Aws {
    async fn list_keys(&self, user: &str) -> Result<Vec<KeyInfo>, IamError> {
        let out = self
            .iam
            .list_access_keys()
            .user_name(user)
            .send()
            .await
            .map_err(|e| classify("iam:ListAccessKeys", &self.endpoint, e))?;
        Ok(out
            .access_key_metadata()
            .iter()
            .map(|k| KeyInfo {
                id: k.access_key_id().unwrap_or_default().to_owned(),
                status: match k.status() {
                    Some(StatusType::Active) => KeyStatus::Active,
                    _ => KeyStatus::Inactive,
                },
                created: k.create_date().map(to_chrono).unwrap_or_default(),
            })
            .collect())
    }

    async fn create_key(&self, user: &str) -> Result<NewKey, IamError> {
        let out = self
            .iam
            .create_access_key()
            .user_name(user)
            .customize()
            .config_override(sent_once())
            .send()
            .await
            .map_err(|e| classify("iam:CreateAccessKey", &self.endpoint, e))?;
        let key = out.access_key().ok_or_else(|| IamError {
            kind: IamErrorKind::Other,
            message: "iam:CreateAccessKey returned no key".into(),
        })?;
        Ok(NewKey {
            id: key.access_key_id().to_owned(),
            secret: SecretString::from(key.secret_access_key().to_owned()),
            created: key.create_date().map(to_chrono).unwrap_or_else(Utc::now),
        })
    }

    async fn set_inactive(&self, user: &str, key_id: &str) -> Result<(), IamError> {
        self.iam
            .update_access_key()
            .user_name(user)
            .access_key_id(key_id)
            .status(StatusType::Inactive)
            .send()
            .await
            .map_err(|e| classify("iam:UpdateAccessKey", &self.endpoint, e))?;
        Ok(())
    }

    async fn delete_key(&self, user: &str, key_id: &str) -> Result<(), IamError> {
        self.iam
            .delete_access_key()
            .user_name(user)
            .access_key_id(key_id)
            .customize()
            .config_override(sent_once())
            .send()
            .await
            .map_err(|e| classify("iam:DeleteAccessKey", &self.endpoint, e))?;
        Ok(())
    }

    async fn last_used(&self, key_id: &str) -> Result<LastUse, IamError> {
        let out = self
            .iam
            .get_access_key_last_used()
            .access_key_id(key_id)
            .send()
            .await
            .map_err(|e| classify("iam:GetAccessKeyLastUsed", &self.endpoint, e))?;
        let used = out.access_key_last_used();
        Ok(LastUse {
            date: used.and_then(|u| u.last_used_date()).map(to_chrono),
            service: used
                .map(|u| u.service_name().to_owned())
                .unwrap_or_else(|| "N/A".into()),
            region: used
                .map(|u| u.region().to_owned())
                .unwrap_or_else(|| "N/A".into()),
        })
    }

    async fn attached_policies(&self, user: &str) -> Result<Vec<String>, IamError> {
        let mut names = Vec::new();
        let mut marker = None;
        loop {
            let out = self
                .iam
                .list_attached_user_policies()
                .user_name(user)
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| classify("iam:ListAttachedUserPolicies", &self.endpoint, e))?;
            names.extend(
                out.attached_policies()
                    .iter()
                    .filter_map(|p| p.policy_name().map(str::to_owned)),
            );
            match out.marker() {
                Some(m) if out.is_truncated() => marker = Some(m.to_owned()),
                _ => return Ok(names),
            }
        }
    }

    async fn tags(&self, user: &str) -> Result<Vec<(String, String)>, IamError> {
        let mut tags = Vec::new();
        let mut marker = None;
        loop {
            let out = self
                .iam
                .list_user_tags()
                .user_name(user)
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| classify("iam:ListUserTags", &self.endpoint, e))?;
            tags.extend(
                out.tags()
                    .iter()
                    .map(|t| (t.key().to_owned(), t.value().to_owned())),
            );
            match out.marker() {
                Some(m) if out.is_truncated() => marker = Some(m.to_owned()),
                _ => return Ok(tags),
            }
        }
    }

    async fn set_tag(&self, user: &str, key: &str, value: &str) -> Result<(), IamError> {
        let tag = aws_sdk_iam::types::Tag::builder()
            .key(key)
            .value(value)
            .build()
            .map_err(|e| IamError {
                kind: IamErrorKind::Other,
                message: format!("iam:TagUser could not be built: {e}"),
            })?;
        self.iam
            .tag_user()
            .user_name(user)
            .tags(tag)
            .send()
            .await
            .map_err(|e| classify("iam:TagUser", &self.endpoint, e))?;
        Ok(())
    }

    async fn remove_tag(&self, user: &str, key: &str) -> Result<(), IamError> {
        self.iam
            .untag_user()
            .user_name(user)
            .tag_keys(key)
            .send()
            .await
            .map_err(|e| classify("iam:UntagUser", &self.endpoint, e))?;
        Ok(())
    }

    async fn prove_key(&self, key: &NewKey) -> Result<Caller, IamError> {
        let creds = Credentials::new(
            key.id.clone(),
            key.secret.expose_secret().to_owned(),
            None,
            None,
            "aws-key-rotator-new-key",
        );
        let conf = aws_sdk_sts::config::Builder::from(&self.config)
            .credentials_provider(creds)
            .build();
        let caller = self
            .caller_with(&aws_sdk_sts::Client::from_conf(conf))
            .await?;
        match &self.account {
            Some(account) if caller.account != *account => Err(IamError {
                kind: IamErrorKind::Other,
                message: format!(
                    "the new key {} works, but in account {}, not the account-role's account {account}: the role reaches another account's user of that name; check account-role",
                    key.id, caller.account
                ),
            }),
            _ => Ok(caller),
        }
    }
}
