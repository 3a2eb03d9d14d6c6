//! The role `migrate` keeps for a user (CONTRACT §13), and the changes that bring IAM's to it.
//! Pure: a role this tool did not make is never changed.

use serde_json::Value;

use crate::ports::migrate::{Permissions, RoleState};

pub use crate::ports::migrate::{MADE_TAG, MAX_SESSION_SECONDS};

/// The role as the manifest and the user's permissions want it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleSpec {
    pub name: String,
    pub trust: Value,
    pub permissions: Permissions,
}

pub use crate::ports::migrate::RoleChange;

/// The changes that make `found` (IAM's role of that name, if any) the role `want` of `user`;
/// `Err` names why it is not touched: a role of that name this tool did not make for `user`.
pub fn changes(
    user: &str,
    want: &RoleSpec,
    found: Option<&RoleState>,
) -> Result<Vec<RoleChange>, String> {
    let p = &want.permissions;
    let Some(role) = found else {
        let mut out = vec![RoleChange::Create {
            trust: want.trust.clone(),
            boundary: p.boundary.clone(),
        }];
        out.extend(p.attached.iter().cloned().map(RoleChange::Attach));
        out.extend(
            p.inline
                .iter()
                .map(|(n, d)| RoleChange::PutInline(n.clone(), d.clone())),
        );
        return Ok(out);
    };
    match role.made_for.as_deref() {
        Some(u) if u == user => {}
        Some(other) => {
            return Err(format!(
                "role {} was made by aws-key-rotator for user {other}, not {user}: give this user its own role (migrate.role-name)",
                role.arn
            ));
        }
        None => {
            return Err(format!(
                "role {} exists and was not made by aws-key-rotator (it has no {MADE_TAG} tag): it is never changed. Name another role (migrate.role-name), or delete that one if it is unused",
                role.arn
            ));
        }
    }
    let mut out = Vec::new();
    if role.trust != want.trust {
        out.push(RoleChange::UpdateTrust(want.trust.clone()));
    }
    if role.max_session_seconds != MAX_SESSION_SECONDS {
        out.push(RoleChange::SessionOneHour);
    }
    let have = &role.permissions;
    match (&have.boundary, &p.boundary) {
        (a, Some(b)) if a.as_ref() != Some(b) => out.push(RoleChange::SetBoundary(b.clone())),
        (Some(_), None) => out.push(RoleChange::RemoveBoundary),
        _ => {}
    }
    out.extend(
        p.attached
            .difference(&have.attached)
            .cloned()
            .map(RoleChange::Attach),
    );
    out.extend(
        have.attached
            .difference(&p.attached)
            .cloned()
            .map(RoleChange::Detach),
    );
    for (name, doc) in &p.inline {
        if have.inline.get(name) != Some(doc) {
            out.push(RoleChange::PutInline(name.clone(), doc.clone()));
        }
    }
    for name in have.inline.keys().filter(|n| !p.inline.contains_key(*n)) {
        out.push(RoleChange::DeleteInline(name.clone()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn want() -> RoleSpec {
        RoleSpec {
            name: "gha-ci".into(),
            trust: json!({"Version": "2012-10-17", "Statement": []}),
            permissions: Permissions {
                attached: ["arn:aws:iam::aws:policy/ReadOnlyAccess".to_owned()].into(),
                inline: [("deploy".to_owned(), json!({"Statement": []}))].into(),
                boundary: None,
            },
        }
    }
    fn made(for_user: Option<&str>) -> RoleState {
        RoleState {
            arn: "arn:aws:iam::123456789012:role/gha-ci".into(),
            made_for: for_user.map(str::to_owned),
            trust: want().trust,
            max_session_seconds: MAX_SESSION_SECONDS,
            permissions: want().permissions,
        }
    }

    #[test]
    fn a_new_role_is_created_with_everything_and_a_matching_one_is_left_alone() {
        let c = changes("ci", &want(), None).unwrap();
        assert!(matches!(c[0], RoleChange::Create { .. }));
        assert_eq!(c.len(), 3, "{c:?}");
        assert_eq!(changes("ci", &want(), Some(&made(Some("ci")))), Ok(vec![]));
    }

    #[test]
    fn a_role_it_made_converges_to_the_manifest() {
        let mut drifted = made(Some("ci"));
        drifted.trust = json!({"Statement": ["old"]});
        drifted.max_session_seconds = 43200;
        drifted
            .permissions
            .attached
            .insert("arn:aws:iam::aws:policy/AdministratorAccess".into());
        drifted.permissions.inline.insert("stale".into(), json!({}));
        drifted.permissions.boundary = Some("arn:aws:iam::123456789012:policy/b".into());
        let c = changes("ci", &want(), Some(&drifted)).unwrap();
        assert_eq!(
            c,
            vec![
                RoleChange::UpdateTrust(want().trust),
                RoleChange::SessionOneHour,
                RoleChange::RemoveBoundary,
                RoleChange::Detach("arn:aws:iam::aws:policy/AdministratorAccess".into()),
                RoleChange::DeleteInline("stale".into()),
            ]
        );
    }

    #[test]
    fn a_role_it_did_not_make_or_made_for_another_user_is_refused() {
        let foreign = changes("ci", &want(), Some(&made(None))).unwrap_err();
        assert!(
            foreign.contains("was not made by aws-key-rotator"),
            "{foreign}"
        );
        let other = changes("ci", &want(), Some(&made(Some("deployer")))).unwrap_err();
        assert!(other.contains("for user deployer"), "{other}");
    }
}
