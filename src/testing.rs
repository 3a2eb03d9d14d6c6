//! What the crate's own tests share.

/// splitmix64: seeded, so a failing case replays.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}

/// The tests' IAM user `ci` with `consumers`: the default periods (90 days, 24 hours, 7 days),
/// no verification, nothing outside GitHub, not moving. Tests override fields as they need.
pub fn user_of(consumers: Vec<crate::manifest::Consumer>) -> crate::manifest::UserSpec {
    crate::manifest::UserSpec {
        on_exposure: Default::default(),
        name: "ci".into(),
        max_age_days: 90,
        deactivate_after_hours: 24,
        delete_after_days: 7,
        consumers,
        verify: vec![],
        external: vec![],
        origin: "m.yml:3:5".into(),
        on_role: Vec::new(),
        migrate: crate::manifest::Migration::defaults("ci"),
        account_role: None,
    }
}
