//! Go duration strings (`1h30m`, `90s`, `1.5h`, `0`), as Tekton's timeouts use, within Go's
//! `time.ParseDuration` range: a duration is a signed 64-bit count of nanoseconds there, so
//! nothing longer than `2562047h47m16.854775807s` is valid.

use std::time::Duration;

/// The longest Go duration (`math.MaxInt64` nanoseconds, `2562047h47m16.854775807s`).
pub const MAX: Duration = Duration::new(9_223_372_036, 854_775_807);

/// What deadlines are capped at: far enough to mean "never", near enough that adding it to any
/// `Instant` or `SystemTime` of a running process cannot overflow.
pub const FAR: Duration = Duration::from_secs(100 * 365 * 86_400);

/// Why a text is not a usable Go duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not in Go's syntax (a number and a unit, repeated).
    #[error("not a Go duration")]
    Syntax,
    /// Below zero; timeouts and intervals cannot be.
    #[error("negative")]
    Negative,
    /// Beyond Go's range.
    #[error("longer than the longest Go duration, 2562047h47m16.854775807s")]
    Overflow,
}

impl DurationError {
    /// What to do about it.
    pub fn hint(self) -> &'static str {
        match self {
            DurationError::Syntax => "use a Go duration such as 30s, 5m or 1h30m",
            DurationError::Negative => "use a duration of 0 or more, such as 30s, 5m or 1h30m",
            DurationError::Overflow => {
                "use at most 2562047h47m16.854775807s (`0` means no timeout where Tekton allows it)"
            }
        }
    }
}

/// Parses a Go duration; `None` when it is not one, is negative or is out of Go's range.
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    parse(s).ok()
}

/// Nanoseconds in each unit Go accepts.
fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

/// Parses a Go duration as `time.ParseDuration` does (exact integer arithmetic, fractions
/// truncated at the nanosecond), refusing negative values and values beyond [`MAX`].
pub fn parse(s: &str) -> Result<Duration, DurationError> {
    let s = s.trim();
    let (negative, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(DurationError::Syntax);
    }
    let limit = MAX.as_nanos();
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let int_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (int, after) = rest.split_at(int_end);
        let (frac, after) = match after.strip_prefix('.') {
            Some(a) => {
                let end = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
                a.split_at(end)
            }
            None => ("", after),
        };
        if int.is_empty() && frac.is_empty() {
            return Err(DurationError::Syntax);
        }
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let unit = unit_nanos(&after[..unit_end]).ok_or(DurationError::Syntax)?;
        rest = &after[unit_end..];
        // Leading zeros cannot overflow; any other digit past the 20th already does.
        let int = int.trim_start_matches('0');
        if int.len() > 20 {
            return Err(DurationError::Overflow);
        }
        let whole: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| DurationError::Syntax)?
        };
        // Digits beyond the 20th of a fraction cannot change a count of nanoseconds.
        let frac = &frac[..frac.len().min(20)];
        let part: u128 = if frac.is_empty() {
            0
        } else {
            let digits: u128 = frac.parse().map_err(|_| DurationError::Syntax)?;
            digits * unit / 10u128.pow(frac.len() as u32)
        };
        total = whole
            .checked_mul(unit)
            .and_then(|w| w.checked_add(part))
            .and_then(|v| v.checked_add(total))
            .filter(|t| *t <= limit)
            .ok_or(DurationError::Overflow)?;
    }
    if negative && total > 0 {
        return Err(DurationError::Negative);
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| DurationError::Overflow)?;
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// `d`, but no longer than [`FAR`]: for deadlines computed from user-given durations.
pub fn capped(d: Duration) -> Duration {
    d.min(FAR)
}

/// Formats a duration the way Go prints it (`1h0m0s`, `40s`, `1.5s`).
pub fn format_go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let frac = d.subsec_nanos();
    if secs == 0 && frac == 0 {
        return "0s".into();
    }
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let sec = if frac == 0 {
        format!("{s}s")
    } else {
        format!("{}s", (s as f64 + f64::from(frac) / 1e9))
    };
    if h > 0 {
        format!("{h}h{m}m{sec}")
    } else if m > 0 {
        format!("{m}m{sec}")
    } else {
        sec
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn go_forms() {
        assert_eq!(parse_go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("40s"), Some(Duration::from_secs(40)));
        assert_eq!(parse_go_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_go_duration(".5s"), Some(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("5.s"), Some(Duration::from_secs(5)));
        assert_eq!(
            parse_go_duration("1µs1ns"),
            Some(Duration::from_nanos(1001))
        );
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("-0"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("."), None);
        assert_eq!(parse_go_duration(".s"), None);
        assert_eq!(parse("-1s"), Err(DurationError::Negative));
        assert_eq!(format_go_duration(Duration::from_secs(3600)), "1h0m0s");
    }

    #[test]
    fn go_range_is_the_bound() {
        assert_eq!(parse("2562047h47m16.854775807s"), Ok(MAX));
        assert_eq!(parse("9223372036854775807ns"), Ok(MAX));
        assert_eq!(
            parse("2562047h47m16.854775808s"),
            Err(DurationError::Overflow)
        );
        assert_eq!(parse("9223372036854775808ns"), Err(DurationError::Overflow));
        // Both reproduced crashes: the first overflowed the parser, the second a deadline.
        assert_eq!(parse("99999999999999999h"), Err(DurationError::Overflow));
        assert_eq!(parse("3000000000000000h"), Err(DurationError::Overflow));
        assert_eq!(
            parse("1000000000000000000000000000000000000000h"),
            Err(DurationError::Overflow)
        );
        assert_eq!(parse("2562048h"), Err(DurationError::Overflow));
        assert_eq!(parse("2562047h"), Ok(Duration::from_secs(2_562_047 * 3600)));
    }

    #[test]
    fn fractions_truncate_at_the_nanosecond() {
        assert_eq!(parse("1.0000000009s"), Ok(Duration::from_secs(1)));
        assert_eq!(
            parse("0.123456789123456789123456789s"),
            Ok(Duration::from_nanos(123_456_789))
        );
        assert_eq!(
            parse("00000000000000000000000001s"),
            Ok(Duration::from_secs(1))
        );
    }

    #[test]
    fn capped_deadlines_can_be_added_to_now() {
        let now = std::time::Instant::now();
        assert!(now.checked_add(capped(MAX)).is_some());
        assert!(
            std::time::SystemTime::now()
                .checked_add(capped(MAX))
                .is_some()
        );
    }

    proptest! {
        #[test]
        fn round_trips_whole_seconds(secs in 0u64..1_000_000) {
            let d = Duration::from_secs(secs);
            prop_assert_eq!(parse_go_duration(&format_go_duration(d)), Some(d));
        }

        #[test]
        fn never_panics(s in ".*") {
            let _ = parse_go_duration(&s);
        }

        #[test]
        fn never_above_go_range(n in "[0-9]{1,30}", u in "(ns|us|ms|s|m|h)") {
            if let Ok(d) = parse(&format!("{n}{u}")) {
                prop_assert!(d <= MAX);
            }
        }
    }
}
