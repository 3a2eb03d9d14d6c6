//! What a valid name is: IAM users, GitHub owners and repositories, secrets, AWS regions and
//! SSM parameters.

pub(super) fn valid_region(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 32
        && r.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

pub(super) fn valid_parameter_name(p: &str) -> bool {
    (1..=2048).contains(&p.len())
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c))
}

pub(super) fn valid_iam_user_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

pub(super) fn valid_owner(name: &str) -> bool {
    (1..=39).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
}

/// `.` and `..` would walk up a URL path (`/repos/acme/../actions/secrets`): never a name.
pub(super) fn dot_segment(s: &str) -> bool {
    s == "." || s == ".."
}

pub(crate) fn valid_repository(repo: &str) -> bool {
    let ok = |s: &str| {
        !s.is_empty()
            && !dot_segment(s)
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    matches!(repo.split_once('/'), Some((owner, name)) if ok(owner) && ok(name))
}

pub(super) fn check_secret_name(name: &str) -> Result<(), &'static str> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Err("is empty"),
        Some(c) if c.is_ascii_digit() => {
            return Err("starts with a digit, which GitHub does not allow");
        }
        _ => {}
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err("may contain only letters, digits and underscores (GitHub's rule)");
    }
    if name.to_ascii_uppercase().starts_with("GITHUB_") {
        return Err("starts with GITHUB_, which GitHub reserves");
    }
    Ok(())
}

/// `arn:PARTITION:iam::ACCOUNT:policy/PATH/NAME` (ACCOUNT 12 digits, or `aws` for AWS's own).
pub(super) fn valid_policy_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", partition, "iam", "", account, resource]
        if partition.starts_with("aws")
            && (*account == "aws" || (account.len() == 12 && account.chars().all(|c| c.is_ascii_digit())))
            && resource.strip_prefix("policy/").is_some_and(|n| !n.is_empty() && !n.ends_with('/')))
}
