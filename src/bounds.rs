//! The range of every number a user can give (CONTRACT §12), in one table: the inputs, the
//! manifest and the JSON Schema all check against it, so no value wraps around, saturates into
//! "now" or overflows later.

/// A named, inclusive range of whole numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bound {
    /// The input or manifest key it bounds.
    pub name: &'static str,
    pub min: u32,
    pub max: u32,
    /// What the number counts, for messages ("days").
    pub unit: &'static str,
}

pub const MAX_AGE_DAYS: Bound = Bound {
    name: "max-age-days",
    min: 1,
    max: 3650,
    unit: "days",
};
pub const DEACTIVATE_AFTER_HOURS: Bound = Bound {
    name: "deactivate-after-hours",
    min: 0,
    max: 8760,
    unit: "hours",
};
pub const DELETE_AFTER_DAYS: Bound = Bound {
    name: "delete-after-days",
    min: 0,
    max: 365,
    unit: "days",
};
pub const STRAGGLER_WINDOW_MINUTES: Bound = Bound {
    name: "straggler-window-minutes",
    min: 0,
    max: 10080,
    unit: "minutes",
};
pub const VERIFY_TIMEOUT_MINUTES: Bound = Bound {
    name: "verify-timeout-minutes",
    min: 1,
    max: 360,
    unit: "minutes",
};
pub const POLL_INTERVAL_SECONDS: Bound = Bound {
    name: "poll-interval-seconds",
    min: 1,
    max: 3600,
    unit: "seconds",
};

/// Every bound, for documentation and tests.
pub const ALL: &[Bound] = &[
    MAX_AGE_DAYS,
    DEACTIVATE_AFTER_HOURS,
    DELETE_AFTER_DAYS,
    STRAGGLER_WINDOW_MINUTES,
    VERIFY_TIMEOUT_MINUTES,
    POLL_INTERVAL_SECONDS,
];

impl Bound {
    /// "a whole number of days from 1 to 3650".
    pub fn expects(&self) -> String {
        format!(
            "a whole number of {} from {} to {}",
            self.unit, self.min, self.max
        )
    }

    /// `n` if it is in range; else why not (the caller names where the number came from).
    pub fn check(&self, n: u64) -> Result<u32, String> {
        match u32::try_from(n) {
            Ok(v) if (self.min..=self.max).contains(&v) => Ok(v),
            _ => Err(format!("must be {}, not {n}", self.expects())),
        }
    }

    /// Parses text (surrounding spaces allowed) as a number in range.
    pub fn parse(&self, s: &str) -> Result<u32, String> {
        let s = s.trim();
        // Digits only: no sign, no fraction, no exponent; any length is reported, not wrapped.
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("must be {}, not {s:?}", self.expects()));
        }
        match s.parse::<u64>() {
            Ok(n) => self.check(n),
            Err(_) => Err(format!("must be {}, not {s:?}", self.expects())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bound_takes_its_ends_and_refuses_past_them() {
        for b in ALL {
            assert_eq!(b.parse(&b.min.to_string()), Ok(b.min), "{}", b.name);
            assert_eq!(b.parse(&format!(" {} ", b.max)), Ok(b.max), "{}", b.name);
            let over = b.parse(&(u64::from(b.max) + 1).to_string()).unwrap_err();
            assert!(over.contains(&b.expects()), "{over}");
            if b.min > 0 {
                assert!(b.parse(&(b.min - 1).to_string()).is_err(), "{}", b.name);
            }
            for bad in [
                "-1",
                "1.5",
                "1e3",
                "",
                "+3",
                "18446744073709551615",
                "9223372036854775808",
                "99999999999999999999999999",
                "0x10",
                "١٢",
            ] {
                assert!(b.parse(bad).is_err(), "{} accepted {bad:?}", b.name);
            }
        }
        assert_eq!(
            DEACTIVATE_AFTER_HOURS.parse("18446744073709551615"),
            Err("must be a whole number of hours from 0 to 8760, not 18446744073709551615".into())
        );
    }
}
