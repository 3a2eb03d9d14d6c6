//! The least-privilege IAM policy for a manifest (`aws-key-rotator policy`, CONTRACT §12): the
//! calls the tool makes, on the resources this manifest names and nothing wider. Pure: the
//! account and the default region come in, a policy document goes out.

use serde_json::{Value, json};

use crate::manifest::{AccountRole, Manifest, Scope, UserSpec};

/// Every IAM call a life cycle makes on a user (keys, their last use, the journal and lease
/// tags). They all take the user's ARN as their resource.
pub const IAM_ACTIONS: &[&str] = &[
    "iam:ListAccessKeys",
    "iam:CreateAccessKey",
    "iam:UpdateAccessKey",
    "iam:DeleteAccessKey",
    "iam:GetAccessKeyLastUsed",
    "iam:ListAttachedUserPolicies",
    "iam:ListUserTags",
    "iam:TagUser",
    "iam:UntagUser",
];

pub const SECRETS_MANAGER_ACTIONS: &[&str] = &[
    "secretsmanager:GetSecretValue",
    "secretsmanager:DescribeSecret",
    "secretsmanager:PutSecretValue",
];

/// The evidence of an exposure (CONTRACT §17): CloudTrail's calls by access key. It has no
/// resource-level permissions in AWS; without it the report says which permission would show
/// more, and nothing fails.
pub const EVIDENCE_ACTIONS: &[&str] = &["cloudtrail:LookupEvents"];

pub const SSM_ACTIONS: &[&str] = &["ssm:GetParameter", "ssm:PutParameter"];

/// An S3 config object (CONTRACT §18): read and written whole, on its own ARN.
pub const S3_ACTIONS: &[&str] = &["s3:GetObject", "s3:PutObject"];

/// The object's KMS key, used by S3 on this identity's behalf: to open the object it reads
/// and to seal the one it puts.
pub const S3_KMS_ACTIONS: &[&str] = &["kms:Decrypt", "kms:GenerateDataKey"];

/// `migrate` reads what each user may do (on the user; its groups' policies on its groups).
pub const MIGRATE_USER_ACTIONS: &[&str] = &[
    "iam:GetUser",
    "iam:ListAttachedUserPolicies",
    "iam:ListUserPolicies",
    "iam:GetUserPolicy",
    "iam:ListGroupsForUser",
];
pub const MIGRATE_GROUP_ACTIONS: &[&str] = &[
    "iam:ListAttachedGroupPolicies",
    "iam:ListGroupPolicies",
    "iam:GetGroupPolicy",
];
/// `migrate` keeps each user's role: only the roles the manifest names. These change nothing
/// a session of the role may do, or only make it less (a description, a session length, a tag,
/// a policy taken away); the actions that give a role power are in the conditioned lists below.
pub const MIGRATE_ROLE_ACTIONS: &[&str] = &[
    "iam:GetRole",
    "iam:TagRole",
    "iam:ListRoleTags",
    "iam:UpdateAssumeRolePolicy",
    "iam:UpdateRole",
    "iam:ListAttachedRolePolicies",
    "iam:DetachRolePolicy",
    "iam:ListRolePolicies",
    "iam:GetRolePolicy",
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
];
/// Attaching a managed policy to a role: only the managed policies the user holds (condition
/// `iam:PolicyARN`).
pub const MIGRATE_ATTACH_ACTIONS: &[&str] = &["iam:AttachRolePolicy"];
/// Creating a role and setting its boundary: only with the user's boundary (condition
/// `iam:PermissionsBoundary`); a role of a user without one is created without one.
pub const MIGRATE_BOUNDARY_ACTIONS: &[&str] = &["iam:CreateRole", "iam:PutRolePermissionsBoundary"];
/// Taking a boundary off a role: only for the roles of users that have none.
pub const MIGRATE_UNBOUND_ACTIONS: &[&str] = &["iam:DeleteRolePermissionsBoundary"];
/// `migrate` sets up GitHub's OIDC provider: only that provider.
pub const MIGRATE_PROVIDER_ACTIONS: &[&str] = &[
    "iam:GetOpenIDConnectProvider",
    "iam:CreateOpenIDConnectProvider",
    "iam:TagOpenIDConnectProvider",
    "iam:AddClientIDToOpenIDConnectProvider",
];

/// `ssm:DescribeParameters` (the tool reads a parameter's type and KMS key with it, so a write
/// keeps them) has no resource-level permissions in AWS: it must be granted on `*`, and shows
/// parameters' names and metadata, never their values.
pub const SSM_DESCRIBE: &str = "ssm:DescribeParameters";

/// What a moving user holds, as IAM says: the managed policies attached to it and to its groups
/// (or those `migrate.permissions` lists), and its permissions boundary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Holds {
    pub managed: Vec<String>,
    pub boundary: Option<String>,
}

/// The policy of the identity that runs `migrate` (CONTRACT §12a; `policy --for migrate`): on the
/// moving users of `manifest` in `account`, their groups, the roles the manifest names and
/// GitHub's OIDC provider of `issuer`. A role may be given only the managed policies its user
/// holds (`iam:PolicyARN`) and only its user's boundary (`iam:PermissionsBoundary`); `holds`
/// says what each user (by name) holds.
pub fn for_migrate(
    manifest: &Manifest,
    account: &str,
    issuer: &str,
    holds: &std::collections::BTreeMap<String, Holds>,
) -> Value {
    let moving: Vec<&UserSpec> = manifest
        .users
        .iter()
        .filter(|u| u.migrating() && u.account_role.is_none())
        .collect();
    if moving.is_empty() {
        return json!({ "Version": "2012-10-17", "Statement": [] });
    }
    let users: Vec<String> = moving
        .iter()
        .map(|u| format!("arn:aws:iam::{account}:user/{}", u.name))
        .collect();
    let mut roles = Vec::new();
    for u in &moving {
        push_new(
            &mut roles,
            format!("arn:aws:iam::{account}:role/{}", u.migrate.role_name),
        );
    }
    let mut statements = vec![
        json!({
            "Sid": "MigrateReadTheUsersPermissions",
            "Effect": "Allow",
            "Action": MIGRATE_USER_ACTIONS,
            "Resource": users,
        }),
        json!({
            "Sid": "MigrateReadTheirGroupsPermissions",
            "Effect": "Allow",
            "Action": MIGRATE_GROUP_ACTIONS,
            "Resource": format!("arn:aws:iam::{account}:group/*"),
        }),
        json!({
            "Sid": "MigrateKeepTheirRoles",
            "Effect": "Allow",
            "Action": MIGRATE_ROLE_ACTIONS,
            "Resource": roles,
        }),
    ];
    for (i, u) in moving.iter().enumerate() {
        let role = format!("arn:aws:iam::{account}:role/{}", u.migrate.role_name);
        let held = holds.get(&u.name).cloned().unwrap_or_default();
        statements.extend(role_statements(i + 1, &role, &held));
    }
    statements.push(json!({
        "Sid": "MigrateGitHubOidcProvider",
        "Effect": "Allow",
        "Action": MIGRATE_PROVIDER_ACTIONS,
        "Resource": format!("arn:aws:iam::{account}:oidc-provider/{issuer}"),
    }));
    statements.push(json!({
        "Sid": "MigrateKnowsItsAccount",
        "Effect": "Allow",
        "Action": ["sts:GetCallerIdentity"],
        "Resource": "*",
    }));
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// The statements that give the role `role` of the `n`th moving user only what its user
/// holds: its managed policies (`iam:PolicyARN`) and its boundary (`iam:PermissionsBoundary`);
/// a role of a user without a boundary is created without one, and only its boundary may go.
fn role_statements(n: usize, role: &str, held: &Holds) -> Vec<Value> {
    let mut statements = Vec::new();
    if !held.managed.is_empty() {
        statements.push(json!({
            "Sid": format!("MigrateRole{n}AttachesOnlyTheUsersPolicies"),
            "Effect": "Allow",
            "Action": MIGRATE_ATTACH_ACTIONS,
            "Resource": role,
            "Condition": { "ArnEquals": { "iam:PolicyARN": held.managed } },
        }));
    }
    match &held.boundary {
        Some(b) => statements.push(json!({
            "Sid": format!("MigrateRole{n}KeepsTheUsersBoundary"),
            "Effect": "Allow",
            "Action": MIGRATE_BOUNDARY_ACTIONS,
            "Resource": role,
            "Condition": { "StringEquals": { "iam:PermissionsBoundary": b } },
        })),
        None => {
            statements.push(json!({
                "Sid": format!("MigrateRole{n}CreatedWithoutBoundary"),
                "Effect": "Allow",
                "Action": ["iam:CreateRole"],
                "Resource": role,
            }));
            statements.push(json!({
                "Sid": format!("MigrateRole{n}HasNoBoundary"),
                "Effect": "Allow",
                "Action": MIGRATE_UNBOUND_ACTIONS,
                "Resource": role,
            }));
        }
    }
    statements
}

/// The policy document of the rotator's own identity for `manifest`: its users of `account`
/// (`*` when unknown; those without `account-role`), with `region` for the AWS stores that name
/// none, and `sts:AssumeRole` on every account role. Never a role, provider, policy or variable
/// write (CONTRACT §12a): retiring a moved user's keys needs none; `migrate` runs as another
/// identity with [`for_migrate`].
pub fn for_manifest(manifest: &Manifest, account: &str, region: &str) -> Value {
    let home: Vec<&UserSpec> = manifest
        .users
        .iter()
        .filter(|u| u.account_role.is_none())
        .collect();
    let mut statements = statements(&home, account, region);
    let mut roles = Vec::new();
    for r in manifest
        .users
        .iter()
        .filter_map(|u| u.account_role.as_ref())
    {
        push_new(&mut roles, r.arn.clone());
    }
    if !roles.is_empty() {
        statements.push(json!({
            "Sid": "AssumeTheAccountRoles",
            "Effect": "Allow",
            "Action": ["sts:AssumeRole"],
            "Resource": roles,
        }));
    }
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// The permissions policy of account role `role`: the same statements, for the users of the
/// manifest reached through it, in its account.
pub fn for_account_role(manifest: &Manifest, role: &AccountRole, region: &str) -> Value {
    let users: Vec<&UserSpec> = manifest
        .users
        .iter()
        .filter(|u| u.account_role.as_ref().is_some_and(|r| r.arn == role.arn))
        .collect();
    let statements = statements(&users, &role.account, region);
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// The trust policy of an account role: the rotator's identity `principal` (an IAM user or
/// role ARN) may assume it, with the manifest's `external-id` when it has one.
pub fn account_role_trust(principal: &str, external_id: Option<&str>) -> Value {
    let mut statement = json!({
        "Sid": "TheRotatorAssumesThisRole",
        "Effect": "Allow",
        "Principal": { "AWS": principal },
        "Action": "sts:AssumeRole",
    });
    if let Some(id) = external_id {
        statement["Condition"] = json!({ "StringEquals": { "sts:ExternalId": id } });
    }
    json!({ "Version": "2012-10-17", "Statement": [statement] })
}

/// The stores' resources the members' consumers name: Secrets Manager secrets, SSM
/// parameters and S3 objects, each once.
fn resources(
    members: &[&UserSpec],
    account: &str,
    region: &str,
) -> (Vec<String>, Vec<String>, Objects) {
    let mut secrets = Vec::new();
    let mut parameters = Vec::new();
    let mut objects = Objects::default();
    for c in members.iter().flat_map(|u| &u.consumers) {
        match &c.scope {
            Scope::SecretsManager { secret, region: r } => {
                let arn = if secret.starts_with("arn:") {
                    secret.clone()
                } else {
                    // Secrets Manager appends six random characters to a secret's ARN.
                    format!(
                        "arn:aws:secretsmanager:{}:{account}:secret:{secret}-??????",
                        r.as_deref().unwrap_or(region)
                    )
                };
                push_new(&mut secrets, arn);
            }
            Scope::ParameterStore { region: r } => {
                for name in [&c.secrets.access_key_id, &c.secrets.secret_access_key] {
                    let slash = if name.starts_with('/') { "" } else { "/" };
                    push_new(
                        &mut parameters,
                        format!(
                            "arn:aws:ssm:{}:{account}:parameter{slash}{name}",
                            r.as_deref().unwrap_or(region)
                        ),
                    );
                }
            }
            Scope::S3 {
                bucket,
                key,
                region: r,
                ..
            } => objects.add(bucket, key, r.as_deref().unwrap_or(region)),
            _ => {}
        }
    }
    (secrets, parameters, objects)
}

fn statements(members: &[&UserSpec], account: &str, region: &str) -> Vec<Value> {
    if members.is_empty() {
        return Vec::new();
    }
    let users: Vec<String> = members
        .iter()
        .map(|u| format!("arn:aws:iam::{account}:user/{}", u.name))
        .collect();
    let (secrets, parameters, objects) = resources(members, account, region);
    let mut statements = vec![
        json!({
            "Sid": "RotateTheManifestsUsersKeys",
            "Effect": "Allow",
            "Action": IAM_ACTIONS,
            "Resource": users,
        }),
        json!({
            "Sid": "ExposureEvidence",
            "Effect": "Allow",
            "Action": EVIDENCE_ACTIONS,
            "Resource": "*",
        }),
    ];
    if !secrets.is_empty() {
        statements.push(json!({
            "Sid": "SecretsManagerConsumers",
            "Effect": "Allow",
            "Action": SECRETS_MANAGER_ACTIONS,
            "Resource": secrets,
        }));
    }
    if !parameters.is_empty() {
        statements.push(json!({
            "Sid": "ParameterStoreConsumers",
            "Effect": "Allow",
            "Action": SSM_ACTIONS,
            "Resource": parameters,
        }));
        statements.push(json!({
            "Sid": "ParameterStoreTypesAndKeys",
            "Effect": "Allow",
            "Action": [SSM_DESCRIBE],
            "Resource": "*",
        }));
    }
    statements.extend(objects.statements(account));
    statements
}

/// The S3 objects a manifest names, their buckets (a bucket key's encryption context) and
/// the regions whose S3 uses their KMS keys.
#[derive(Default)]
struct Objects {
    arns: Vec<String>,
    buckets: Vec<String>,
    via: Vec<String>,
}

impl Objects {
    fn add(&mut self, bucket: &str, key: &str, region: &str) {
        push_new(&mut self.arns, format!("arn:aws:s3:::{bucket}/{key}"));
        push_new(&mut self.buckets, format!("arn:aws:s3:::{bucket}"));
        push_new(&mut self.via, format!("s3.{region}.amazonaws.com"));
    }

    /// The objects' actions on their ARNs; their KMS keys only through S3 and only for them
    /// (the encryption context S3 sends is the object's ARN, or its bucket's with an S3 Bucket
    /// Key: S3's own check on the object's ARN still bounds what is read or written).
    fn statements(self, account: &str) -> Vec<Value> {
        if self.arns.is_empty() {
            return Vec::new();
        }
        let mut contexts = self.arns.clone();
        contexts.extend(self.buckets);
        vec![
            json!({
                "Sid": "S3ConfigObjects",
                "Effect": "Allow",
                "Action": S3_ACTIONS,
                "Resource": self.arns,
            }),
            json!({
                "Sid": "S3ConfigObjectKeys",
                "Effect": "Allow",
                "Action": S3_KMS_ACTIONS,
                "Resource": format!("arn:aws:kms:*:{account}:key/*"),
                "Condition": {
                    "StringEquals": { "kms:ViaService": self.via },
                    "ArnEquals": { "kms:EncryptionContext:aws:s3:arn": contexts },
                },
            }),
        ]
    }
}

fn push_new(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// Whether IAM's resource pattern `pattern` (`*` any run of characters, `?` one) matches `arn`.
pub fn arn_matches(pattern: &str, arn: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], s) || (!s.is_empty() && go(p, &s[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &s[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), arn.as_bytes())
}

/// Whether `policy` allows `action` on `resource` without any condition key (its Allow
/// statements only: the tool's policies have no Deny).
pub fn allows(policy: &Value, action: &str, resource: &str) -> bool {
    allows_when(policy, action, resource, &[])
}

/// Whether `policy` allows `action` on `resource` in a request whose condition keys are
/// `context` (`iam:PolicyARN`, …). Conditions `StringEquals` and `ArnEquals` (any listed value
/// matches; a key the request lacks fails) are evaluated, as IAM does for these documents.
pub fn allows_when(policy: &Value, action: &str, resource: &str, context: &[(&str, &str)]) -> bool {
    let list = |v: &Value| -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    };
    let holds = |condition: &Value| -> bool {
        let Some(ops) = condition.as_object() else {
            return true;
        };
        ops.iter().all(|(op, keys)| {
            let exact = matches!(op.as_str(), "StringEquals" | "ArnEquals");
            exact
                && keys.as_object().is_some_and(|keys| {
                    keys.iter().all(|(k, allowed)| {
                        context
                            .iter()
                            .find(|(key, _)| key.eq_ignore_ascii_case(k))
                            .is_some_and(|(_, v)| list(allowed).iter().any(|a| a == v))
                    })
                })
        })
    };
    policy["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|st| st["Effect"] == "Allow")
        .any(|st| {
            list(&st["Action"]).iter().any(|a| a == action)
                && list(&st["Resource"])
                    .iter()
                    .any(|r| arn_matches(r, resource))
                && holds(&st["Condition"])
        })
}

#[cfg(test)]
mod tests;
