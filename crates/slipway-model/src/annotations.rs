//! Slipway's own annotations and the values they may hold: each is checked where it is
//! applied, so that a value out of range is refused with its position instead of being
//! ignored (or, for a duration, overflowing) later.

use std::time::Duration;

use crate::duration::DurationError;

/// Orders the queue: higher starts first (a whole number, default 0).
pub const PRIORITY: &str = "slipway.dev/priority";
/// Limits a Pipeline's or Task's runs at once (a whole number, 1 or more).
pub const MAX_CONCURRENT_RUNS: &str = "slipway.dev/max-concurrent-runs";
/// How often an EventListener's repository is polled (a Go duration).
pub const POLL_INTERVAL: &str = "slipway.dev/poll-interval";
/// On a run in a server's history that a cluster runs (`slipway serve --controller`): the API
/// server it runs in. Such a run is cancelled in the cluster, not through the server.
pub const CLUSTER_RUN: &str = "slipway.dev/cluster";

/// Largest `slipway.dev/max-concurrent-runs`: more runs than any machine holds at once.
pub const MAX_RUNS_LIMIT: usize = 1_000_000;

/// Why an annotation's value is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AnnotationError {
    /// Not a whole number.
    #[error("not a whole number")]
    NotANumber,
    /// A whole number beyond the range the annotation allows.
    #[error("out of range")]
    OutOfRange,
    /// Not a usable Go duration.
    #[error("{0}")]
    Duration(DurationError),
}

impl AnnotationError {
    /// What to do about it, for the annotation `key`.
    pub fn hint(self, key: &str) -> String {
        match (key, self) {
            (_, AnnotationError::Duration(d)) => d.hint().to_string(),
            (PRIORITY, _) => format!(
                "use a whole number between {} and {} (higher starts first)",
                i64::MIN,
                i64::MAX
            ),
            _ => format!("use a whole number from 1 to {MAX_RUNS_LIMIT}"),
        }
    }
}

/// `slipway.dev/priority`: any 64-bit whole number.
pub fn priority(value: &str) -> Result<i64, AnnotationError> {
    let v = value.trim();
    v.parse::<i64>().map_err(|_| {
        if is_whole(v) {
            AnnotationError::OutOfRange
        } else {
            AnnotationError::NotANumber
        }
    })
}

/// `slipway.dev/max-concurrent-runs`: from 1 to [`MAX_RUNS_LIMIT`].
pub fn max_concurrent_runs(value: &str) -> Result<usize, AnnotationError> {
    let v = value.trim();
    match v.parse::<usize>() {
        Ok(n) if (1..=MAX_RUNS_LIMIT).contains(&n) => Ok(n),
        Ok(_) => Err(AnnotationError::OutOfRange),
        Err(_) if is_whole(v) => Err(AnnotationError::OutOfRange),
        Err(_) => Err(AnnotationError::NotANumber),
    }
}

/// `slipway.dev/poll-interval`: a Go duration (polling happens at most once a second).
pub fn poll_interval(value: &str) -> Result<Duration, AnnotationError> {
    crate::duration::parse(value).map_err(AnnotationError::Duration)
}

/// Checks `key`'s value when `key` is one of slipway's annotations; others are not ours.
pub fn check(key: &str, value: &str) -> Result<(), AnnotationError> {
    match key {
        PRIORITY => priority(value).map(drop),
        MAX_CONCURRENT_RUNS => max_concurrent_runs(value).map(drop),
        POLL_INTERVAL => poll_interval(value).map(drop),
        _ => Ok(()),
    }
}

fn is_whole(v: &str) -> bool {
    let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_in_and_out_of_range() {
        assert_eq!(priority(" 10 "), Ok(10));
        assert_eq!(priority("-3"), Ok(-3));
        assert_eq!(
            priority("99999999999999999999"),
            Err(AnnotationError::OutOfRange)
        );
        assert_eq!(priority("high"), Err(AnnotationError::NotANumber));
        assert_eq!(max_concurrent_runs("2"), Ok(2));
        assert_eq!(max_concurrent_runs("0"), Err(AnnotationError::OutOfRange));
        assert_eq!(max_concurrent_runs("-1"), Err(AnnotationError::OutOfRange));
        assert_eq!(
            max_concurrent_runs("18446744073709551616"),
            Err(AnnotationError::OutOfRange)
        );
        assert_eq!(poll_interval("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(
            poll_interval("99999999999999999h"),
            Err(AnnotationError::Duration(DurationError::Overflow))
        );
        assert_eq!(check("example.com/other", "anything"), Ok(()));
    }
}
