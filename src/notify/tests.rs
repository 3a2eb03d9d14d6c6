use super::*;

fn ctx() -> Context {
    Context {
        command: "deactivate".into(),
        config: ".github/aws-key-rotation.yml".into(),
        run_url: Some("https://github.com/acme/infra/actions/runs/42".into()),
    }
}

fn found(body: &str, comments: u64) -> Found {
    Found {
        number: 7,
        title: title("ci"),
        body: body.into(),
        comments,
        author: "octo".into(),
    }
}

fn person(why: &str) -> Standing {
    Standing::Person(why.into())
}

fn opened_body(why: &str) -> String {
    match decide("ci", &person(why), None, &ctx()) {
        Act::Open { body, .. } => body,
        other => panic!("expected an issue to be opened, got {other:?}"),
    }
}

#[test]
fn a_user_that_needs_a_person_gets_an_issue_with_the_reason_what_to_run_and_the_run() {
    let Act::Open { title, body } = decide(
        "ci",
        &person("user ci has only an Inactive key"),
        None,
        &ctx(),
    ) else {
        panic!("no issue opened")
    };
    assert_eq!(title, "aws-key-rotator: ci needs a person");
    assert!(body.contains("user ci has only an Inactive key"), "{body}");
    assert!(
        body.contains("aws-key-rotator status --config .github/aws-key-rotation.yml --user ci"),
        "{body}"
    );
    assert!(
        body.contains("https://github.com/acme/infra/actions/runs/42"),
        "{body}"
    );
    assert!(body.contains(MARKER), "{body}");
}

#[test]
fn the_same_reason_on_a_later_day_adds_nothing_even_when_its_times_differ() {
    let first = opened_body(
        "the old key AKIAOLD of user ci was due for deactivation at 2026-12-01 10:00 UTC",
    );
    let later =
        person("the old key AKIAOLD of user ci was due for deactivation at 2026-12-02 11:30 UTC");
    assert_eq!(
        decide("ci", &later, Some((&found(&first, 0), &[])), &ctx()),
        Act::Nothing
    );
}

#[test]
fn a_new_reason_is_one_comment_and_the_newest_marker_decides() {
    let first = opened_body("user ci has only an Inactive key");
    let new = person("user ci has keys in a combination no command handles");
    let Act::Comment { number, body } = decide("ci", &new, Some((&found(&first, 0), &[])), &ctx())
    else {
        panic!("no comment")
    };
    assert_eq!(number, 7);
    assert!(body.contains("no command handles"), "{body}");
    // With that comment on the issue, the same new reason adds nothing more.
    let comments = vec!["someone: looking".to_owned(), body];
    assert_eq!(
        decide("ci", &new, Some((&found(&first, 2), &comments)), &ctx()),
        Act::Nothing
    );
    // And the first reason back again is new again.
    assert!(matches!(
        decide(
            "ci",
            &person("user ci has only an Inactive key"),
            Some((&found(&first, 2), &comments)),
            &ctx()
        ),
        Act::Comment { .. }
    ));
}

#[test]
fn a_healthy_user_closes_its_issue_with_a_comment_and_opens_none() {
    let f = found(&opened_body("x"), 0);
    let Act::Close { number, comment } = decide("ci", &Standing::Healthy, Some((&f, &[])), &ctx())
    else {
        panic!("not closed")
    };
    assert_eq!(number, 7);
    let comment = comment.expect("a closing comment");
    assert!(comment.contains("healthy again"), "{comment}");
    assert_eq!(decide("ci", &Standing::Healthy, None, &ctx()), Act::Nothing);
}

#[test]
fn a_close_that_was_lost_after_its_comment_is_closed_without_another_comment() {
    let f = found(&opened_body("x"), 1);
    let Act::Close { comment, .. } = decide("ci", &Standing::Healthy, Some((&f, &[])), &ctx())
    else {
        panic!("not closed")
    };
    let said = [comment.unwrap()];
    // The next run finds the issue still open, its last comment the healthy one.
    assert_eq!(
        decide("ci", &Standing::Healthy, Some((&f, &said)), &ctx()),
        Act::Close {
            number: 7,
            comment: None
        }
    );
    // Needing a person again, for the very first reason, is news after "healthy again".
    assert!(matches!(
        decide("ci", &person("x"), Some((&f, &said)), &ctx()),
        Act::Comment { number: 7, .. }
    ));
}

#[test]
fn a_run_that_could_not_tell_leaves_the_issue_alone() {
    let f = found(&opened_body("x"), 0);
    assert_eq!(
        decide("ci", &Standing::Unknown, Some((&f, &[])), &ctx()),
        Act::Nothing
    );
    assert_eq!(decide("ci", &Standing::Unknown, None, &ctx()), Act::Nothing);
}

#[test]
fn markdown_in_a_reason_and_a_strange_run_url_are_not_rendered() {
    let mut c = ctx();
    c.run_url = Some("javascript:alert(1)".into());
    let Act::Open { body, .. } = decide("ci", &person("a [link](http://x) `code`"), None, &c)
    else {
        panic!()
    };
    assert!(!body.contains("[link](http://x)"), "{body}");
    assert!(!body.contains("javascript:"), "{body}");
}

#[test]
fn a_reason_key_ignores_numbers_and_spacing_only() {
    assert_eq!(
        reason_key("due at 10:00  on day 3"),
        reason_key("due at 11:59 on day 4")
    );
    assert_ne!(
        reason_key("key AKIAONE is old"),
        reason_key("key AKIATWO is old")
    );
    assert_eq!(last_reason(["no marker here"]), None);
}

fn report(outcome: Outcome, attention: Option<&str>) -> UserReport {
    let user = crate::rotation::memory::user(&[]);
    let mut r = UserReport::new(&user, outcome);
    r.attention = attention.map(str::to_owned);
    r
}

#[test]
fn standing_follows_the_exit_code() {
    assert_eq!(
        standing(&report(Outcome::Nothing("not due".into()), Some("why"))),
        person("why")
    );
    assert_eq!(
        standing(&report(Outcome::Refused("a straggler".into()), None)),
        person("a straggler")
    );
    assert_eq!(
        standing(&report(Outcome::Nothing("not due".into()), None)),
        Standing::Healthy
    );
    assert_eq!(
        standing(&report(Outcome::Deactivated, None)),
        Standing::Healthy
    );
    assert_eq!(
        standing(&report(Outcome::Failed("lost".into()), None)),
        Standing::Unknown
    );
    assert_eq!(
        standing(&report(Outcome::Invalid("bad".into()), None)),
        Standing::Unknown
    );
    assert_eq!(
        standing(&report(Outcome::Deferred("budget".into()), None)),
        Standing::Unknown
    );
}

/// CONTRACT §12a: a marker is believed only from the tool's own identity. A stranger's
/// comment that copies the marker of the current reason cannot silence it, and one that says
/// "healthy" cannot stop the close.
#[test]
fn markers_are_believed_only_from_the_tools_own_identity() {
    let first = opened_body("user ci has only an Inactive key");
    let issue = found(&first, 2);
    let new = person("user ci has keys in a combination no command handles");
    let forged = opened_body("user ci has keys in a combination no command handles");
    let stranger = Comment {
        author: "mallory".into(),
        body: forged,
    };
    let ours = Comment {
        author: "octo".into(),
        body: "A new reason.".into(),
    };
    // The token is octo's: mallory's marker is not ours.
    let (f, said) = believed(&issue, &[ours.clone(), stranger.clone()], Some("octo"));
    assert_eq!(said, vec!["A new reason.".to_owned()]);
    assert!(matches!(
        decide("ci", &new, Some((&f, &said)), &ctx()),
        Act::Comment { .. }
    ));
    // A "healthy" marker from a stranger: the close still comments and closes.
    let healthy = Comment {
        author: "mallory".into(),
        body: format!("{MARKER}{HEALTHY} -->"),
    };
    let (f, said) = believed(&issue, &[healthy], Some("octo"));
    assert!(matches!(
        decide("ci", &Standing::Healthy, Some((&f, &said)), &ctx()),
        Act::Close {
            comment: Some(_),
            ..
        }
    ));
    // An issue someone else opened: its body is not believed.
    let mut theirs = issue.clone();
    theirs.author = "mallory".into();
    let (f, _) = believed(&theirs, &[], Some("octo"));
    assert_eq!(f.body, "");
    // An installation token cannot say who it is: the issue's bot author is trusted, a person
    // opening it is not.
    let mut bot = issue.clone();
    bot.author = "github-actions[bot]".into();
    let botc = Comment {
        author: "github-actions[bot]".into(),
        body: "x".into(),
    };
    let (f, said) = believed(&bot, &[botc, stranger], None);
    assert_eq!((f.body.as_str(), said.len()), (first.as_str(), 1));
    let (f, said) = believed(&issue, &[ours], None);
    assert_eq!((f.body.as_str(), said.len()), ("", 0));
}
