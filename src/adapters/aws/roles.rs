//! IAM's OIDC providers, roles and a user's policies, as `migrate` uses them.

use std::collections::BTreeMap;

use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_iam::types::{AttachedPolicy, Tag};
use serde_json::Value;

use super::{Aws, classify};
use crate::ports::IamError;
use crate::ports::migrate::{MADE_TAG, MAX_SESSION_SECONDS, RoleChange};
use crate::ports::migrate::{Permissions, Provider, RoleState, Roles, UserPermissions};

/// IAM returns policy documents URL-encoded (encoded JSON never parses as JSON, so a document
/// that does is taken as it is, `%` and all).
fn document(text: &str) -> Value {
    if let Ok(v) = serde_json::from_str(text) {
        return v;
    }
    let decoded = percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map(|t| t.into_owned())
        .unwrap_or_else(|_| text.to_owned());
    serde_json::from_str(&decoded).unwrap_or(Value::String(decoded))
}

fn absent<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.code() == Some("NoSuchEntity")
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder()
        .key(key)
        .value(value)
        .build()
        .expect("key and value are set")
}

/// The attached and inline policies of a user, group or role (their IAM calls differ only in
/// name): `policies!(aws, user_name(u), list_attached_user_policies, list_user_policies,
/// get_user_policy, "User")`.
macro_rules! policies {
    ($aws:expr, $who:ident($name:expr), $attached:ident, $inline:ident, $get:ident, $kind:literal) => {{
        let aws = $aws;
        let iam = &aws.iam;
        let attached = iam
            .$attached()
            .$who($name)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(aws.fail(concat!("iam:ListAttached", $kind, "Policies")))?;
        let names = iam
            .$inline()
            .$who($name)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(aws.fail(concat!("iam:List", $kind, "Policies")))?;
        aws.permissions(attached, names, |policy| async move {
            let p = iam
                .$get()
                .$who($name)
                .policy_name(policy)
                .send()
                .await
                .map_err(aws.fail(concat!("iam:Get", $kind, "Policy")))?;
            Ok(p.policy_document().to_owned())
        })
        .await
    }};
}

impl Aws {
    fn fail<E>(
        &self,
        action: &str,
    ) -> impl FnOnce(SdkError<E, aws_smithy_runtime_api::http::Response>) -> IamError + '_
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let action = action.to_owned();
        move |e| classify(&action, &self.endpoint, e)
    }

    /// A user's, group's or role's policies: the attached ARNs, and each inline policy's
    /// document fetched by `get`.
    async fn permissions<G, F>(
        &self,
        attached: Vec<AttachedPolicy>,
        names: Vec<String>,
        get: G,
    ) -> Result<Permissions, IamError>
    where
        G: Fn(String) -> F,
        F: std::future::Future<Output = Result<String, IamError>>,
    {
        let mut inline = BTreeMap::new();
        for name in names {
            let doc = get(name.clone()).await?;
            inline.insert(name, document(&doc));
        }
        Ok(Permissions {
            attached: attached
                .iter()
                .filter_map(|p| p.policy_arn().map(str::to_owned))
                .collect(),
            inline,
            boundary: None,
        })
    }

    async fn user_policies(&self, user: &str) -> Result<Permissions, IamError> {
        policies!(
            self,
            user_name(user),
            list_attached_user_policies,
            list_user_policies,
            get_user_policy,
            "User"
        )
    }

    async fn group_policies(&self, group: &str) -> Result<Permissions, IamError> {
        policies!(
            self,
            group_name(group),
            list_attached_group_policies,
            list_group_policies,
            get_group_policy,
            "Group"
        )
    }

    async fn role_policies(&self, role: &str) -> Result<Permissions, IamError> {
        policies!(
            self,
            role_name(role),
            list_attached_role_policies,
            list_role_policies,
            get_role_policy,
            "Role"
        )
    }
}

impl Roles for Aws {
    async fn account(&self) -> Result<(String, String), IamError> {
        let caller = self.whoami().await?;
        let partition = caller
            .arn
            .split(':')
            .nth(1)
            .filter(|p| !p.is_empty())
            .unwrap_or("aws")
            .to_owned();
        Ok((partition, caller.account))
    }

    async fn provider(&self, arn: &str) -> Result<Option<Provider>, IamError> {
        match self
            .iam
            .get_open_id_connect_provider()
            .open_id_connect_provider_arn(arn)
            .send()
            .await
        {
            Ok(p) => Ok(Some(Provider {
                arn: arn.to_owned(),
                audiences: p.client_id_list().to_vec(),
                made_here: p.tags().iter().any(|t| t.key() == MADE_TAG),
            })),
            Err(e) if absent(&e) => Ok(None),
            Err(e) => Err(classify("iam:GetOpenIDConnectProvider", &self.endpoint, e)),
        }
    }

    async fn create_provider(&self, url: &str, audience: &str) -> Result<String, IamError> {
        let out = self
            .iam
            .create_open_id_connect_provider()
            .url(url)
            .client_id_list(audience)
            .tags(tag(MADE_TAG, "github-oidc"))
            .send()
            .await
            .map_err(self.fail("iam:CreateOpenIDConnectProvider"))?;
        Ok(out
            .open_id_connect_provider_arn()
            .unwrap_or_default()
            .to_owned())
    }

    async fn add_audience(&self, arn: &str, audience: &str) -> Result<(), IamError> {
        self.iam
            .add_client_id_to_open_id_connect_provider()
            .open_id_connect_provider_arn(arn)
            .client_id(audience)
            .send()
            .await
            .map_err(self.fail("iam:AddClientIDToOpenIDConnectProvider"))?;
        Ok(())
    }

    async fn user_permissions(&self, user: &str) -> Result<UserPermissions, IamError> {
        let found = match self.iam.get_user().user_name(user).send().await {
            Ok(u) => u,
            Err(e) if absent(&e) => {
                return Err(IamError {
                    kind: crate::ports::IamErrorKind::NoSuchUser,
                    message: "no such IAM user".into(),
                });
            }
            Err(e) => return Err(classify("iam:GetUser", &self.endpoint, e)),
        };
        let mut own = self.user_policies(user).await?;
        own.boundary = found
            .user()
            .and_then(|u| u.permissions_boundary())
            .and_then(|b| b.permissions_boundary_arn())
            .map(str::to_owned);
        let groups = self
            .iam
            .list_groups_for_user()
            .user_name(user)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(self.fail("iam:ListGroupsForUser"))?;
        let mut by_group = BTreeMap::new();
        for g in groups {
            let name = g.group_name().to_owned();
            by_group.insert(name.clone(), self.group_policies(&name).await?);
        }
        Ok(UserPermissions {
            own,
            groups: by_group,
        })
    }

    async fn role(&self, name: &str) -> Result<Option<RoleState>, IamError> {
        let role = match self.iam.get_role().role_name(name).send().await {
            Ok(r) => r.role.ok_or_else(|| IamError {
                kind: crate::ports::IamErrorKind::Other,
                message: format!("iam:GetRole {name} answered without the role"),
            })?,
            Err(e) if absent(&e) => return Ok(None),
            Err(e) => return Err(classify("iam:GetRole", &self.endpoint, e)),
        };
        let tags = self
            .iam
            .list_role_tags()
            .role_name(name)
            .send()
            .await
            .map_err(self.fail("iam:ListRoleTags"))?;
        let mut permissions = self.role_policies(name).await?;
        permissions.boundary = role
            .permissions_boundary()
            .and_then(|b| b.permissions_boundary_arn())
            .map(str::to_owned);
        Ok(Some(RoleState {
            arn: role.arn().to_owned(),
            made_for: tags
                .tags()
                .iter()
                .find(|t| t.key() == MADE_TAG)
                .map(|t| t.value().to_owned()),
            trust: role
                .assume_role_policy_document()
                .map(document)
                .unwrap_or(Value::Null),
            max_session_seconds: role.max_session_duration().unwrap_or(3600),
            permissions,
        }))
    }

    async fn change_role(
        &self,
        name: &str,
        user: &str,
        change: &RoleChange,
    ) -> Result<(), IamError> {
        let iam = &self.iam;
        match change {
            RoleChange::Create { trust, boundary } => {
                iam.create_role()
                    .role_name(name)
                    .assume_role_policy_document(trust.to_string())
                    .max_session_duration(MAX_SESSION_SECONDS)
                    .set_permissions_boundary(boundary.clone())
                    .description(format!(
                        "Assumed through GitHub's OIDC by the consumers of IAM user {user} (made by aws-key-rotator migrate)"
                    ))
                    .tags(tag(MADE_TAG, user))
                    .send()
                    .await
                    .map_err(self.fail("iam:CreateRole"))?;
            }
            RoleChange::UpdateTrust(trust) => {
                iam.update_assume_role_policy()
                    .role_name(name)
                    .policy_document(trust.to_string())
                    .send()
                    .await
                    .map_err(self.fail("iam:UpdateAssumeRolePolicy"))?;
            }
            RoleChange::SessionOneHour => {
                iam.update_role()
                    .role_name(name)
                    .max_session_duration(MAX_SESSION_SECONDS)
                    .send()
                    .await
                    .map_err(self.fail("iam:UpdateRole"))?;
            }
            other => self.change_permissions(name, other).await?,
        }
        Ok(())
    }
}

impl Aws {
    /// A change of what the role may do: its boundary, its managed and inline policies.
    async fn change_permissions(&self, name: &str, change: &RoleChange) -> Result<(), IamError> {
        let iam = &self.iam;
        match change {
            RoleChange::SetBoundary(arn) => {
                iam.put_role_permissions_boundary()
                    .role_name(name)
                    .permissions_boundary(arn)
                    .send()
                    .await
                    .map_err(self.fail("iam:PutRolePermissionsBoundary"))?;
            }
            RoleChange::RemoveBoundary => {
                iam.delete_role_permissions_boundary()
                    .role_name(name)
                    .send()
                    .await
                    .map_err(self.fail("iam:DeleteRolePermissionsBoundary"))?;
            }
            RoleChange::Attach(arn) => {
                iam.attach_role_policy()
                    .role_name(name)
                    .policy_arn(arn)
                    .send()
                    .await
                    .map_err(self.fail("iam:AttachRolePolicy"))?;
            }
            RoleChange::Detach(arn) => {
                iam.detach_role_policy()
                    .role_name(name)
                    .policy_arn(arn)
                    .send()
                    .await
                    .map_err(self.fail("iam:DetachRolePolicy"))?;
            }
            RoleChange::PutInline(policy, doc) => {
                iam.put_role_policy()
                    .role_name(name)
                    .policy_name(policy)
                    .policy_document(doc.to_string())
                    .send()
                    .await
                    .map_err(self.fail("iam:PutRolePolicy"))?;
            }
            RoleChange::DeleteInline(policy) => {
                iam.delete_role_policy()
                    .role_name(name)
                    .policy_name(policy)
                    .send()
                    .await
                    .map_err(self.fail("iam:DeleteRolePolicy"))?;
            }
            RoleChange::Create { .. } | RoleChange::UpdateTrust(_) | RoleChange::SessionOneHour => {
                unreachable!("change_role makes these itself")
            }
        }
        Ok(())
    }
}
