//! Every store a consumer may use behind one [`SecretStore`]: GitHub's, AWS's, Vault's and S3's,
//! each scope sent to its own.

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use crate::adapters::aws_stores::AwsStores;
use crate::adapters::github::GitHub;
use crate::adapters::vault::Vault;
use crate::manifest::Scope;
use crate::ports::{SecretStore, StoreError};
use crate::seal::ScopeKey;

pub struct Stores<'a> {
    pub github: &'a GitHub,
    pub aws: &'a AwsStores,
    pub vault: &'a Vault,
}

/// Which side a scope's store is on.
enum Side {
    GitHub,
    Aws,
    Vault,
    S3,
}

fn side(scope: &Scope) -> Side {
    match scope {
        Scope::Vault { .. } => Side::Vault,
        Scope::S3 { .. } => Side::S3,
        s if s.is_readable() => Side::Aws,
        _ => Side::GitHub,
    }
}

impl SecretStore for Stores<'_> {
    async fn public_key(&self, scope: &Scope) -> Result<ScopeKey, StoreError> {
        self.github.public_key(scope).await
    }
    async fn updated_at(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        match side(scope) {
            Side::GitHub => self.github.updated_at(scope, name).await,
            Side::Aws => self.aws.updated_at(scope, name).await,
            Side::Vault => self.vault.updated_at(scope, name).await,
            Side::S3 => self.aws.s3.updated_at(scope, name).await,
        }
    }
    async fn put(
        &self,
        scope: &Scope,
        key: Option<&ScopeKey>,
        name: &str,
        value: &SecretString,
    ) -> Result<(), StoreError> {
        match side(scope) {
            Side::GitHub => self.github.put(scope, key, name, value).await,
            Side::Aws => self.aws.put(scope, key, name, value).await,
            Side::Vault => self.vault.put(scope, name, value).await,
            Side::S3 => Err(crate::ports::not_whole_pair(scope)),
        }
    }
    async fn put_pair(
        &self,
        scope: &Scope,
        names: [&str; 2],
        values: [&SecretString; 2],
    ) -> Result<(), StoreError> {
        match side(scope) {
            Side::Vault => self.vault.put_pair(scope, names, values).await,
            Side::S3 => self.aws.s3.put_pair(scope, names, values).await,
            _ => Err(crate::ports::not_whole_pair(scope)),
        }
    }
    async fn read(&self, scope: &Scope, name: &str) -> Result<Option<SecretString>, StoreError> {
        match side(scope) {
            Side::GitHub => self.github.read(scope, name).await,
            Side::Aws => self.aws.read(scope, name).await,
            Side::Vault => self.vault.read(scope, name).await,
            Side::S3 => self.aws.s3.read(scope, name).await,
        }
    }
    async fn access(&self, scope: &Scope, name: &str) -> Result<Option<String>, StoreError> {
        match side(scope) {
            Side::GitHub => self.github.access(scope, name).await,
            _ => Ok(None),
        }
    }
    async fn stamps(
        &self,
        scope: &Scope,
    ) -> Result<Option<std::collections::BTreeMap<String, DateTime<Utc>>>, StoreError> {
        match side(scope) {
            Side::GitHub => self.github.stamps(scope).await,
            _ => Ok(None),
        }
    }
    async fn fit_for_secret(&self, scope: &Scope, name: &str) -> Result<(), StoreError> {
        match side(scope) {
            Side::Aws => self.aws.fit_for_secret(scope, name).await,
            Side::S3 => self.aws.s3.fit_for_secret(scope, name).await,
            _ => Ok(()),
        }
    }
}
