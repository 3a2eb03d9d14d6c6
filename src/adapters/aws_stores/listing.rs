//! `discover`'s view of the AWS stores (CONTRACT §18): names and descriptions listed, never a
//! secret's or a parameter's value; an S3 object's text only to search it for a key id.

use aws_sdk_s3::error::ProvideErrorMetadata;
use secrecy::SecretString;

use super::{AwsStores, store_error};
use crate::ports::discover::{AwsListing, Named};
use crate::ports::{StoreError, StoreErrorKind};

impl AwsListing for AwsStores {
    async fn secrets(&self, region: &Option<String>) -> Result<Vec<Named>, StoreError> {
        let mut out = Vec::new();
        let mut pages = self.sm(region).list_secrets().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| store_error("secretsmanager:ListSecrets", e))?;
            out.extend(page.secret_list().iter().map(|s| Named {
                name: s.name().unwrap_or_default().to_owned(),
                description: s.description().map(str::to_owned),
            }));
        }
        Ok(out)
    }

    async fn parameters(&self, region: &Option<String>) -> Result<Vec<Named>, StoreError> {
        let mut out = Vec::new();
        let mut pages = self
            .ssm(region)
            .describe_parameters()
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| store_error("ssm:DescribeParameters", e))?;
            out.extend(page.parameters().iter().map(|p| Named {
                name: p.name().unwrap_or_default().to_owned(),
                description: p.description().map(str::to_owned),
            }));
        }
        Ok(out)
    }

    async fn objects(
        &self,
        bucket: &str,
        prefix: &str,
        region: &Option<String>,
    ) -> Result<(Vec<String>, bool), StoreError> {
        let out = self
            .s3
            .client(region)
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .max_keys(1000)
            .send()
            .await
            .map_err(|e| store_error("s3:ListBucket", e))?;
        let keys = out
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect();
        Ok((keys, out.is_truncated().unwrap_or(false)))
    }

    async fn object_text(
        &self,
        bucket: &str,
        key: &str,
        region: &Option<String>,
        limit: u64,
    ) -> Result<Option<SecretString>, StoreError> {
        let out = match self
            .s3
            .client(region)
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) if e.code() == Some("NoSuchKey") => return Ok(None),
            Err(e) => return Err(store_error("s3:GetObject", e)),
        };
        if out
            .content_length()
            .is_some_and(|n| n < 0 || n as u64 > limit)
        {
            return Ok(None);
        }
        let bytes = out.body.collect().await.map_err(|e| StoreError {
            kind: StoreErrorKind::Unavailable,
            message: format!("s3:GetObject: the body was cut short: {e}"),
            uncertain: false,
            status: None,
        })?;
        Ok(String::from_utf8(bytes.to_vec())
            .ok()
            .map(SecretString::from))
    }
}
