//! Users of other AWS accounts (CONTRACT §15): one STS AssumeRole session per account role and
//! run, named after the run, kept while it lasts and renewed before it expires. Every IAM call
//! and AWS store of those users goes through it.

use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_config::identity::IdentityCache;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{self, ProvideCredentials, error::CredentialsError};
use secrecy::SecretString;

use super::{Aws, classify};
use crate::manifest::AccountRole;
use crate::ports::Mask as Masker;
use crate::ports::{IamError, IamErrorKind};

/// How long a session is asked for: STS's default, and the longest a role chained from another
/// role's session may have.
const SESSION_LENGTH: Duration = Duration::from_secs(3600);

/// A session is renewed when it has less than this left: longer than any one call takes.
const RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);

/// `aws-key-rotator-RUN`, as STS allows session names (2–64 of `\w+=,.@-`).
pub fn session_name(run_id: &str) -> String {
    let clean: String = format!("aws-key-rotator-{run_id}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    clean
}

/// The credentials of one account role's session, asked for once and again only when they
/// are about to expire; every new secret is masked the moment it arrives.
struct Session {
    sts: aws_sdk_sts::Client,
    role: AccountRole,
    session_name: String,
    endpoint: String,
    masker: Masker,
    current: tokio::sync::Mutex<Option<Credentials>>,
}

// Names the role only: never the credentials.
impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session({})", self.role.arn)
    }
}

impl Session {
    async fn credentials(&self) -> Result<Credentials, IamError> {
        let mut current = self.current.lock().await;
        if let Some(c) = current.as_ref()
            && c.expiry()
                .is_none_or(|e| e > SystemTime::now() + RENEW_BEFORE)
        {
            return Ok(c.clone());
        }
        let out = self
            .sts
            .assume_role()
            .role_arn(&self.role.arn)
            .role_session_name(&self.session_name)
            .set_external_id(self.role.external_id.clone())
            .duration_seconds(SESSION_LENGTH.as_secs() as i32)
            .send()
            .await
            .map_err(|e| classify("sts:AssumeRole", &self.endpoint, e))?;
        let Some(c) = out.credentials() else {
            return Err(IamError {
                kind: IamErrorKind::Other,
                message: "sts:AssumeRole returned no credentials".into(),
            });
        };
        for secret in [c.secret_access_key(), c.session_token()] {
            (self.masker)(&SecretString::from(secret.to_owned()));
        }
        let expires = SystemTime::UNIX_EPOCH
            + Duration::from_secs(u64::try_from(c.expiration().secs()).unwrap_or(0));
        let creds = Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            Some(expires),
            "aws-key-rotator-account-role",
        );
        *current = Some(creds.clone());
        Ok(creds)
    }
}

impl ProvideCredentials for Session {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(async move {
            self.credentials()
                .await
                .map_err(|e| CredentialsError::provider_error(e.message))
        })
    }
}

/// One account role's clients, or why its users cannot be reached (with the exit code their
/// reports carry).
pub struct AccountSession {
    pub role: AccountRole,
    pub reached: Result<Aws, NotReached>,
}

impl Aws {
    /// Assumes `role` with this process's credentials and checks, with GetCallerIdentity, that
    /// the session is that role's in that role's account. The session's secrets are masked
    /// through `masker` (also when the SDK renews it later).
    pub async fn through_role(
        &self,
        role: &AccountRole,
        run_id: &str,
        masker: Masker,
    ) -> AccountSession {
        let session = Session {
            sts: self.sts.clone(),
            role: role.clone(),
            session_name: session_name(run_id),
            endpoint: self.endpoint.clone(),
            masker,
            current: tokio::sync::Mutex::new(None),
        };
        let words = |e: IamError| not_assumed(role, e);
        if let Err(e) = session.credentials().await {
            return AccountSession {
                role: role.clone(),
                reached: Err(words(e)),
            };
        }
        let config: SdkConfig = self
            .config
            .to_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(session),
            )
            // The session keeps itself: one AssumeRole per account and run.
            .identity_cache(IdentityCache::no_cache())
            .build();
        let aws = Aws::from_config(config, self.propagation, Some(role.account.clone()));
        let reached = match aws.sts.get_caller_identity().send().await {
            Err(e) => Err(words(classify("sts:GetCallerIdentity", &aws.endpoint, e))),
            Ok(out)
                if out.account() != Some(role.account.as_str())
                    || !crate::model::arn::is_session_of(
                        out.arn().unwrap_or_default(),
                        &role.arn,
                    ) =>
            {
                Err(NotReached::WrongSession(format!(
                    "the session of account-role {} is {} in account {}, not that role in account {}: its users are not touched",
                    role.arn,
                    out.arn().unwrap_or("unknown"),
                    out.account().unwrap_or("unknown"),
                    role.account
                )))
            }
            Ok(_) => Ok(aws),
        };
        AccountSession {
            role: role.clone(),
            reached,
        }
    }
}

/// Why an account role's session cannot be used (CONTRACT §15). The app chooses the exit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotReached {
    /// The role's trust or this identity's permissions refuse it: the set-up is to fix.
    Refused(String),
    /// STS failed or could not be reached: nothing was changed, and a later run may succeed.
    Failed(String),
    /// The session is another identity's: its users are not touched.
    WrongSession(String),
}

impl std::fmt::Display for NotReached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotReached::Refused(m) | NotReached::Failed(m) | NotReached::WrongSession(m) => {
                f.write_str(m)
            }
        }
    }
}

/// Why `role` could not be assumed.
fn not_assumed(role: &AccountRole, e: IamError) -> NotReached {
    match e.kind {
        IamErrorKind::Credentials => NotReached::Refused(format!(
            "cannot assume the account-role {} ({}): its trust must admit this run's identity{}, and this identity needs sts:AssumeRole on it (see docs/account-role-trust.json)",
            role.arn,
            e.message,
            if role.external_id.is_some() {
                " with the manifest's external-id"
            } else {
                ""
            }
        )),
        _ => NotReached::Failed(format!(
            "cannot assume the account-role {}: {}; nothing was changed, run again",
            role.arn, e.message
        )),
    }
}
