//! Words for people: durations as a person writes them (`100ms`, `2.5s`, `3m`), not as `Debug`
//! prints them (`100.000001ms`).

use std::time::Duration;

pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let tenths = (ms + 50) / 100;
    if tenths < 600 {
        return if tenths.is_multiple_of(10) {
            format!("{}s", tenths / 10)
        } else {
            format!("{}.{}s", tenths / 10, tenths % 10)
        };
    }
    let secs = (ms + 500) / 1000;
    match (secs / 60, secs % 60) {
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_person_wrote_them() {
        for (d, want) in [
            (Duration::from_nanos(100_000_001), "100ms"),
            (Duration::from_millis(999), "999ms"),
            (Duration::from_millis(1000), "1s"),
            (Duration::from_millis(2500), "2.5s"),
            (Duration::from_millis(59_940), "59.9s"),
            (Duration::from_secs(60), "1m"),
            (Duration::from_secs(150), "2m30s"),
        ] {
            assert_eq!(duration(d), want, "{d:?}");
        }
    }
}
