//! The role's permissions (CONTRACT §13): the user's own, minus what only manages the user's
//! own keys and tags (a role has no keys; its sessions need not tag the user). Pure.

use serde_json::{Value, json};

use crate::ports::migrate::{Permissions, UserPermissions};

/// The actions that only manage a user's own access keys and tags.
const KEY_AND_TAG_ACTIONS: [&str; 9] = [
    "iam:createaccesskey",
    "iam:deleteaccesskey",
    "iam:updateaccesskey",
    "iam:listaccesskeys",
    "iam:getaccesskeylastused",
    "iam:taguser",
    "iam:untaguser",
    "iam:listusertags",
    "iam:getuser",
];

/// The role's permissions for user `name`: `copy` (its attached policies attached, its and
/// its groups' inline policies copied inline, `group-GROUP-NAME` for a group's) or `policies`
/// attached instead. The user's permissions boundary is kept either way.
pub fn for_role(
    name: &str,
    user: &UserPermissions,
    policies: Option<&[String]>,
) -> Result<Permissions, String> {
    let mut role = Permissions {
        boundary: user.own.boundary.clone(),
        ..Permissions::default()
    };
    if let Some(arns) = policies {
        role.attached = arns.iter().cloned().collect();
        return Ok(role);
    }
    let mut copy = |prefix: String, p: &Permissions| -> Result<(), String> {
        role.attached.extend(p.attached.iter().cloned());
        for (policy, doc) in &p.inline {
            let Some(doc) = without_key_management(doc, name) else {
                continue;
            };
            let copied = format!("{prefix}{policy}");
            if copied.len() > MAX_POLICY_NAME {
                return Err(format!(
                    "the inline policy {policy} copied as {copied} would be longer than IAM's {MAX_POLICY_NAME} characters: rename it, or list managed policies in migrate.permissions"
                ));
            }
            if role.inline.insert(copied.clone(), doc).is_some() {
                return Err(format!(
                    "two inline policies would both be copied as {copied} (the user's own and a group's): rename one, or list managed policies in migrate.permissions"
                ));
            }
        }
        Ok(())
    };
    copy(String::new(), &user.own)?;
    for (group, p) in &user.groups {
        copy(format!("group-{group}-"), p)?;
    }
    Ok(role)
}

/// IAM's longest policy name.
const MAX_POLICY_NAME: usize = 128;

/// The document without the statements that only manage user `name`'s own keys and tags: an
/// `Allow` whose every action is one of [`KEY_AND_TAG_ACTIONS`], named exactly (a wildcard
/// may grant more), on that user only (its ARN, or `${aws:username}`). `None` when nothing is
/// left. Anything else is kept whole: the role never has less than the user had.
pub fn without_key_management(doc: &Value, name: &str) -> Option<Value> {
    let statements = match doc.get("Statement") {
        Some(Value::Array(list)) => list.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => return Some(doc.clone()),
    };
    let kept: Vec<Value> = statements
        .into_iter()
        .filter(|s| !only_own_key_management(s, name))
        .collect();
    if kept.is_empty() {
        return None;
    }
    let mut out = doc.clone();
    out["Statement"] = json!(kept);
    Some(out)
}

fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    match v? {
        Value::String(a) => Some(vec![a.clone()]),
        Value::Array(list) => list.iter().map(|x| x.as_str().map(str::to_owned)).collect(),
        _ => None,
    }
}

fn only_own_key_management(statement: &Value, name: &str) -> bool {
    let (Some(actions), Some(resources)) = (
        strings(statement.get("Action")),
        strings(statement.get("Resource")),
    ) else {
        return false;
    };
    let own = |r: &String| {
        r.contains("${aws:username}")
            || (r.starts_with("arn:aws")
                && r.rsplit_once(":user/").is_some_and(|(_, path)| {
                    path.rsplit('/').next() == Some(name)
                        && !path.contains('*')
                        && !path.contains('?')
                }))
    };
    statement.get("Effect").and_then(Value::as_str) == Some("Allow")
        && statement.get("Condition").is_none()
        && !actions.is_empty()
        && actions
            .iter()
            .all(|a| KEY_AND_TAG_ACTIONS.contains(&a.to_ascii_lowercase().as_str()))
        && !resources.is_empty()
        && resources.iter().all(own)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(statements: Value) -> Value {
        json!({"Version": "2012-10-17", "Statement": statements})
    }

    #[test]
    fn statements_that_manage_only_the_users_own_keys_and_tags_are_left_out() {
        let user = "arn:aws:iam::123456789012:user/ci";
        let keys = json!({"Effect": "Allow", "Action": ["iam:CreateAccessKey", "iam:DeleteAccessKey", "iam:ListAccessKeys", "iam:TagUser"], "Resource": user});
        let own = json!({"Effect": "Allow", "Action": "iam:UpdateAccessKey", "Resource": "arn:aws:iam::*:user/${aws:username}"});
        // Kept: a wildcard may grant more, and another user's keys are not its own.
        let pattern = json!({"Effect": "Allow", "Action": "iam:*AccessKey*", "Resource": user});
        let others = json!({"Effect": "Allow", "Action": "iam:CreateAccessKey", "Resource": "*"});
        let everyone = json!({"Effect": "Allow", "Action": "iam:CreateAccessKey", "Resource": "arn:aws:iam::123456789012:user/*"});
        let s3 =
            json!({"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::site/*"});
        let mixed = json!({"Effect": "Allow", "Action": ["iam:CreateAccessKey", "s3:GetObject"], "Resource": "*"});
        let deny = json!({"Effect": "Deny", "Action": "iam:CreateAccessKey", "Resource": user});
        let all = json!([keys, own, pattern, others, everyone, s3, mixed, deny]);
        let out = without_key_management(&doc(all), "ci").expect("something is left");
        assert_eq!(
            out["Statement"],
            json!([pattern, others, everyone, s3, mixed, deny])
        );
        assert_eq!(without_key_management(&doc(json!([keys])), "ci"), None);
        // For another user, the same statement manages someone else's keys: kept.
        assert!(without_key_management(&doc(json!([keys])), "other").is_some());
        // A single statement object, as IAM allows.
        assert_eq!(
            without_key_management(&doc(json!(s3)), "ci").unwrap()["Statement"],
            json!([s3])
        );
    }

    #[test]
    fn the_role_gets_the_users_and_its_groups_policies_and_keeps_the_boundary() {
        let s3 = doc(json!([{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]));
        let keys = doc(
            json!([{"Effect": "Allow", "Action": "iam:CreateAccessKey", "Resource": "arn:aws:iam::123456789012:user/ci"}]),
        );
        let user = UserPermissions {
            own: Permissions {
                attached: ["arn:aws:iam::aws:policy/ReadOnlyAccess".to_owned()].into(),
                inline: [
                    ("deploy".to_owned(), s3.clone()),
                    ("self-keys".to_owned(), keys),
                ]
                .into(),
                boundary: Some("arn:aws:iam::123456789012:policy/boundary".into()),
            },
            groups: [(
                "builders".to_owned(),
                Permissions {
                    attached: ["arn:aws:iam::123456789012:policy/build".to_owned()].into(),
                    inline: [("cache".to_owned(), s3.clone())].into(),
                    boundary: None,
                },
            )]
            .into(),
        };
        let role = for_role("ci", &user, None).unwrap();
        assert_eq!(
            role.attached,
            [
                "arn:aws:iam::123456789012:policy/build".to_owned(),
                "arn:aws:iam::aws:policy/ReadOnlyAccess".to_owned()
            ]
            .into()
        );
        assert_eq!(
            role.inline.keys().cloned().collect::<Vec<_>>(),
            ["deploy", "group-builders-cache"]
        );
        assert_eq!(role.boundary, user.own.boundary);
        let listed = for_role(
            "ci",
            &user,
            Some(&["arn:aws:iam::aws:policy/PowerUserAccess".to_owned()]),
        )
        .unwrap();
        assert_eq!(
            listed.attached,
            ["arn:aws:iam::aws:policy/PowerUserAccess".to_owned()].into()
        );
        assert!(listed.inline.is_empty());
        assert_eq!(listed.boundary, user.own.boundary);
        // A user policy named like a group's copy: refused, not overwritten.
        let mut clash = user.clone();
        clash
            .own
            .inline
            .insert("group-builders-cache".into(), s3.clone());
        let e = for_role("ci", &clash, None).unwrap_err();
        assert!(e.contains("both be copied as group-builders-cache"), "{e}");
    }
}
