//! IAM role ARNs, and whether a caller is a session of one.

/// `arn:PARTITION:iam::ACCOUNT:role/PATH/NAME` → (partition, account, name).
pub fn parse_arn(arn: &str) -> Option<(&str, &str, &str)> {
    let rest = arn.strip_prefix("arn:")?;
    let (partition, rest) = rest.split_once(':')?;
    let rest = rest.strip_prefix("iam::")?;
    let (account, resource) = rest.split_once(':')?;
    let name = resource.strip_prefix("role/")?.rsplit('/').next()?;
    let ok = partition.starts_with("aws")
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && !name.is_empty();
    ok.then_some((partition, account, name))
}

/// Whether `caller` (GetCallerIdentity's ARN) is a session of role `role_arn`:
/// `arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION`.
pub fn is_session_of(caller: &str, role_arn: &str) -> bool {
    let Some((partition, account, name)) = parse_arn(role_arn) else {
        return false;
    };
    let Some(rest) = caller
        .strip_prefix("arn:")
        .and_then(|r| r.strip_prefix(partition))
        .and_then(|r| r.strip_prefix(':'))
    else {
        return false;
    };
    rest.strip_prefix("sts::")
        .and_then(|r| r.strip_prefix(account))
        .and_then(|r| r.strip_prefix(":assumed-role/"))
        .and_then(|r| r.split_once('/'))
        .is_some_and(|(role, session)| role == name && !session.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_of_the_role_and_nothing_else() {
        let role = "arn:aws:iam::123456789012:role/ci/gha-ci";
        assert_eq!(parse_arn(role), Some(("aws", "123456789012", "gha-ci")));
        assert!(!is_session_of(
            "arn:aws-cn:sts::123456789012:assumed-role/gha-ci/s",
            role
        ));
        assert!(is_session_of(
            "arn:aws-cn:sts::123456789012:assumed-role/gha-ci/s",
            "arn:aws-cn:iam::123456789012:role/gha-ci"
        ));
        assert!(is_session_of(
            "arn:aws:sts::123456789012:assumed-role/gha-ci/GitHubActions",
            role
        ));
        for other in [
            "arn:aws:sts::123456789012:assumed-role/gha-ci-other/s",
            "arn:aws:sts::210987654321:assumed-role/gha-ci/s",
            "arn:aws:iam::123456789012:user/gha-ci",
            "arn:aws:sts::123456789012:assumed-role/gha-ci/",
        ] {
            assert!(!is_session_of(other, role), "{other}");
        }
        assert_eq!(parse_arn("arn:aws:iam::123456789012:user/ci"), None);
        assert_eq!(parse_arn("gha-ci"), None);
    }
}
