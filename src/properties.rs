//! Generated inputs and manifests (CONTRACT §12): numbers at and past every bound, odd names,
//! deep and broken YAML, thousands of each. Where inputs become settings nothing panics, and
//! every refusal names what was wrong (its input, or its file, line and column). That a
//! refusal changes nothing in IAM or GitHub is the end-to-end tests' part (`tests/bad_input.rs`):
//! both happen before any adapter exists.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::bounds;
use crate::config::{INPUTS, Kind, RawInputs, Settings};
use crate::manifest;
use crate::testing::Rng;

/// A number-ish or odd string: every bound's ends and one past them, huge, signed, fractional,
/// exponent, hex, non-ASCII digits, random digit runs.
fn odd_value(rng: &mut Rng) -> String {
    let edges: Vec<String> = bounds::ALL
        .iter()
        .flat_map(|b| {
            [
                b.min.to_string(),
                b.max.to_string(),
                (u64::from(b.max) + 1).to_string(),
                (i64::from(b.min) - 1).to_string(),
            ]
        })
        .collect();
    match rng.below(6) {
        0 => edges[rng.below(edges.len())].clone(),
        1 => rng
            .pick(&[
                "18446744073709551615",
                "18446744073709551616",
                "9223372036854775808",
                "-9223372036854775809",
                "1000000000000000",
                "1e9",
                "0x10",
                "1.0",
                " 7 ",
                "+3",
                "٣",
                "",
                "true",
                "yes",
                "\u{0}",
                "\n",
            ])
            .to_owned(),
        2 => (0..rng.below(40))
            .map(|_| char::from(b'0' + rng.below(10) as u8))
            .collect(),
        3 => (0..rng.below(20))
            .map(|_| char::from_u32(rng.below(0x3000) as u32).unwrap_or('?'))
            .collect(),
        4 => rng.next().to_string(),
        _ => (rng.below(10_000)).to_string(),
    }
}

#[test]
fn ten_thousand_generated_inputs_never_panic_and_each_refusal_names_its_input() {
    let mut rng = Rng(0x5EED);
    let names: Vec<&str> = INPUTS
        .iter()
        .filter(|i| matches!(i.kind, Kind::Value(_) | Kind::Bool))
        .map(|i| i.name)
        .collect();
    let (mut accepted, mut refused) = (0, 0);
    for case in 0..10_000 {
        let mut raw = RawInputs::default();
        let mut set = Vec::new();
        for _ in 0..1 + rng.below(3) {
            let name = rng.pick(&names);
            let value = odd_value(&mut rng);
            raw.set(name, value.clone());
            set.push((name, value));
        }
        let result = catch_unwind(AssertUnwindSafe(|| Settings::from_raw(raw)));
        let Ok(result) = result else {
            panic!("case {case}: {set:?} panicked");
        };
        match result {
            Ok(s) => {
                accepted += 1;
                // Whatever was accepted is inside its range.
                assert!(
                    s.verify_timeout.as_secs() <= 360 * 60,
                    "case {case}: {set:?}"
                );
                assert!(
                    (1..=3600).contains(&s.poll_interval.as_secs()),
                    "case {case}"
                );
                assert!(s.straggler_window.num_minutes() <= 10_080, "case {case}");
                assert!(
                    s.deactivate_after
                        .is_none_or(|d| (0..=8760).contains(&d.num_hours())),
                    "case {case}"
                );
                assert!(
                    s.delete_after
                        .is_none_or(|d| (0..=365).contains(&d.num_days())),
                    "case {case}"
                );
            }
            Err(e) => {
                refused += 1;
                assert!(
                    set.iter()
                        .any(|(name, _)| e.contains(&format!("input {name} "))),
                    "case {case}: {set:?}: the refusal names no input it was given: {e}"
                );
            }
        }
    }
    assert!(
        accepted > 500 && refused > 500,
        "{accepted} accepted, {refused} refused"
    );
}

/// A manifest from pieces, with odd values where numbers and names go.
fn odd_manifest(rng: &mut Rng) -> String {
    let name = |rng: &mut Rng| -> String {
        match rng.below(5) {
            0 => rng
                .pick(&[
                    ".", "..", "a/..", "../x", "acme/..", "./web", "-x", "x y", "ü", "",
                ])
                .to_owned(),
            1 => "a".repeat(rng.below(300)),
            2 => odd_value(rng),
            _ => rng
                .pick(&["acme/web", "acme/api", "ci-deployer", "prod"])
                .to_owned(),
        }
    };
    let mut y = String::from("version: 1\n");
    if rng.below(2) == 0 {
        y.push_str(&format!(
            "defaults:\n  {}: {}\n",
            rng.pick(&[
                "max-age-days",
                "deactivate-after-hours",
                "delete-after-days"
            ]),
            odd_value(rng)
        ));
    }
    y.push_str(&format!("users:\n  - name: {}\n", name(rng)));
    if rng.below(2) == 0 {
        y.push_str(&format!(
            "    {}: {}\n",
            rng.pick(&[
                "max-age-days",
                "deactivate-after-hours",
                "delete-after-days"
            ]),
            odd_value(rng)
        ));
    }
    y.push_str("    consumers:\n");
    for _ in 0..1 + rng.below(3) {
        match rng.below(5) {
            0 => y.push_str(&format!(
                "      - repository: {}\n        environment: {}\n",
                name(rng),
                name(rng)
            )),
            1 => y.push_str(&format!(
                "      - organization: {}\n        visibility: {}\n",
                name(rng),
                rng.pick(&["all", "private", "selected", "public", "1"])
            )),
            2 => y.push_str(&format!(
                "      - ssm-parameters: {{ access-key-id: {}, secret-access-key: {} }}\n",
                name(rng),
                name(rng)
            )),
            _ => y.push_str(&format!("      - repository: {}\n", name(rng))),
        }
    }
    match rng.below(8) {
        // Deep nesting, an unclosed bracket, an alias bomb, a tab, random bytes.
        0 => {
            let depth = 1 + rng.below(2000);
            y.push_str(&format!(
                "    external: {}{}\n",
                "[".repeat(depth),
                "]".repeat(depth)
            ));
        }
        1 => y.push_str("    external: [unclosed\n"),
        2 => {
            y.push_str("    external: &a [x, x]\n    verify: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n")
        }
        3 => {
            let mut at = rng.below(y.len());
            while !y.is_char_boundary(at) {
                at -= 1;
            }
            y.insert(at, '\t');
        }
        4 => {
            let at = rng.below(y.len());
            let mut bytes = y.into_bytes();
            bytes.truncate(at);
            y = String::from_utf8_lossy(&bytes).into_owned();
        }
        _ => {}
    }
    y
}

#[test]
fn ten_thousand_generated_manifests_never_panic_and_each_refusal_is_located() {
    let mut rng = Rng(0xFEED);
    let (mut accepted, mut refused) = (0, 0);
    for case in 0..10_000 {
        let yaml = odd_manifest(&mut rng);
        let result = catch_unwind(AssertUnwindSafe(|| manifest::parse("m.yml", &yaml)));
        let Ok(result) = result else {
            panic!("case {case} panicked on:\n{yaml}");
        };
        match result {
            Ok(m) => {
                accepted += 1;
                for u in &m.users {
                    assert!((1..=3650).contains(&u.max_age_days), "case {case}:\n{yaml}");
                    assert!(u.deactivate_after_hours <= 8760, "case {case}:\n{yaml}");
                    assert!(u.delete_after_days <= 365, "case {case}:\n{yaml}");
                    for c in &u.consumers {
                        // No name that would walk up a path: a repository's two segments, an
                        // environment (one segment, `/` encoded), an organization.
                        let dots = |s: &str| s == "." || s == "..";
                        let bad = match &c.scope {
                            crate::manifest::Scope::Repository(r)
                            | crate::manifest::Scope::RepositoryDependabot(r) => {
                                r.split('/').any(dots)
                            }
                            crate::manifest::Scope::Environment {
                                repository,
                                environment,
                            } => repository.split('/').any(dots) || dots(environment),
                            crate::manifest::Scope::Organization { organization, .. } => {
                                dots(organization) || organization.contains('/')
                            }
                            _ => false,
                        };
                        assert!(!bad, "case {case}: {} accepted:\n{yaml}", c.scope);
                    }
                }
            }
            Err(e) => {
                refused += 1;
                assert!(
                    e.to_string().starts_with("m.yml:"),
                    "case {case}: not located: {e}\n{yaml}"
                );
            }
        }
    }
    // Most generated manifests have something wrong by design; enough are right to check.
    assert!(
        accepted > 50 && refused > 5000,
        "{accepted} accepted, {refused} refused"
    );
}
