//! The role's permissions (CONTRACT §13): the user's own, minus what only manages the user's
//! own keys and tags (a role has no keys; its sessions need not tag the user). Pure.

use serde_json::{Value, json};

use super::ports::{Permissions, UserPermissions};
use super::trust::glob;

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

/// The role's permissions for a user: `copy` (its attached policies attached, its and its
/// groups' inline policies copied inline, `group-GROUP-NAME` for a group's) or `policies`
/// attached instead. The user's permissions boundary is kept either way.
pub fn for_role(user: &UserPermissions, policies: Option<&[String]>) -> Permissions {
    let mut role = Permissions {
        boundary: user.own.boundary.clone(),
        ..Permissions::default()
    };
    if let Some(arns) = policies {
        role.attached = arns.iter().cloned().collect();
        return role;
    }
    let mut copy = |prefix: String, p: &Permissions| {
        role.attached.extend(p.attached.iter().cloned());
        for (name, doc) in &p.inline {
            if let Some(doc) = without_key_management(doc) {
                role.inline.insert(format!("{prefix}{name}"), doc);
            }
        }
    };
    copy(String::new(), &user.own);
    for (group, p) in &user.groups {
        copy(format!("group-{group}-"), p);
    }
    role
}

/// The document without the statements that only manage the user's own keys and tags (an
/// `Allow` whose every action is one of [`KEY_AND_TAG_ACTIONS`], or a pattern matching only
/// them); `None` when nothing is left.
pub fn without_key_management(doc: &Value) -> Option<Value> {
    let statements = match doc.get("Statement") {
        Some(Value::Array(list)) => list.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => return Some(doc.clone()),
    };
    let kept: Vec<Value> = statements
        .into_iter()
        .filter(|s| !only_key_management(s))
        .collect();
    if kept.is_empty() {
        return None;
    }
    let mut out = doc.clone();
    out["Statement"] = json!(kept);
    Some(out)
}

fn only_key_management(statement: &Value) -> bool {
    let actions: Vec<String> = match statement.get("Action") {
        Some(Value::String(a)) => vec![a.to_ascii_lowercase()],
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_ascii_lowercase)
            .collect(),
        _ => return false,
    };
    let matches_only_keys = |pattern: &String| {
        // A pattern that could grant anything else (iam:*, *, iam:Get*) is kept whole.
        !pattern.is_empty()
            && pattern.starts_with("iam:")
            && !matches!(
                pattern.as_str(),
                "iam:*" | "iam:get*" | "iam:list*" | "iam:tag*"
            )
            && KEY_AND_TAG_ACTIONS.iter().any(|a| glob(pattern, a))
            && ![
                "iam:createrole",
                "iam:passrole",
                "iam:putuserpolicy",
                "iam:createuser",
            ]
            .iter()
            .any(|other| glob(pattern, other))
    };
    statement.get("Effect").and_then(Value::as_str) == Some("Allow")
        && !actions.is_empty()
        && actions.iter().all(matches_only_keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(statements: Value) -> Value {
        json!({"Version": "2012-10-17", "Statement": statements})
    }

    #[test]
    fn statements_that_manage_the_users_own_keys_and_tags_are_left_out() {
        let keys = json!({"Effect": "Allow", "Action": ["iam:CreateAccessKey", "iam:DeleteAccessKey", "iam:ListAccessKeys", "iam:TagUser"], "Resource": "arn:aws:iam::123456789012:user/ci"});
        let pattern = json!({"Effect": "Allow", "Action": "iam:*AccessKey*", "Resource": "*"});
        let s3 =
            json!({"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::site/*"});
        let mixed = json!({"Effect": "Allow", "Action": ["iam:CreateAccessKey", "s3:GetObject"], "Resource": "*"});
        let broad = json!({"Effect": "Allow", "Action": "iam:*", "Resource": "*"});
        let deny = json!({"Effect": "Deny", "Action": "iam:CreateAccessKey", "Resource": "*"});
        let out = without_key_management(&doc(json!([keys, pattern, s3, mixed, broad, deny])))
            .expect("something is left");
        assert_eq!(out["Statement"], json!([s3, mixed, broad, deny]));
        assert_eq!(without_key_management(&doc(json!([keys]))), None);
        // A single statement object, as IAM allows.
        assert_eq!(
            without_key_management(&doc(json!(s3))).unwrap()["Statement"],
            json!([s3])
        );
    }

    #[test]
    fn the_role_gets_the_users_and_its_groups_policies_and_keeps_the_boundary() {
        let s3 = doc(json!([{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]));
        let keys =
            doc(json!([{"Effect": "Allow", "Action": "iam:CreateAccessKey", "Resource": "*"}]));
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
        let role = for_role(&user, None);
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
            &user,
            Some(&["arn:aws:iam::aws:policy/PowerUserAccess".to_owned()]),
        );
        assert_eq!(
            listed.attached,
            ["arn:aws:iam::aws:policy/PowerUserAccess".to_owned()].into()
        );
        assert!(listed.inline.is_empty());
        assert_eq!(listed.boundary, user.own.boundary);
    }
}
