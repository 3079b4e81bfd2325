//! Which waiting runs may start now: priority then arrival order, under a global limit and
//! per-Pipeline limits, without one full Pipeline holding back the runs of others.

use std::collections::HashMap;

/// A waiting run, in queue order (highest priority first, then oldest).
#[derive(Debug, Clone, Copy)]
pub struct Waiting<'a> {
    /// Identifies the run.
    pub key: &'a str,
    /// What its limit counts by: the Pipeline (or Task) it runs.
    pub group: &'a str,
    /// Held by the user; it waits until released.
    pub held: bool,
}

/// Limits on runs at once.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// All runs together; `None` for no limit.
    pub total: Option<usize>,
    /// Per group.
    pub per_group: HashMap<String, usize>,
}

/// The runs to start now, in order. `running` counts the runs already going per group.
pub fn admit<'a>(
    waiting: &[Waiting<'a>],
    running: &HashMap<String, usize>,
    limits: &Limits,
    group_limit: impl Fn(&str) -> Option<usize>,
) -> Vec<&'a str> {
    let mut counts = running.clone();
    let mut total: usize = running.values().sum();
    let mut out = Vec::new();
    for w in waiting {
        if limits.total.is_some_and(|t| total >= t) {
            break;
        }
        if w.held {
            continue;
        }
        let limit = limits
            .per_group
            .get(w.group)
            .copied()
            .or_else(|| group_limit(w.group));
        let n = counts.entry(w.group.to_string()).or_insert(0);
        // Embedded specs (no name) share no limit with each other.
        if !w.group.is_empty() && limit.is_some_and(|l| *n >= l) {
            continue;
        }
        *n += 1;
        total += 1;
        out.push(w.key);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w<'a>(key: &'a str, group: &'a str) -> Waiting<'a> {
        Waiting {
            key,
            group,
            held: false,
        }
    }

    #[test]
    fn a_full_pipeline_does_not_hold_back_others() {
        let limits = Limits {
            total: Some(3),
            per_group: HashMap::from([("build".to_string(), 1)]),
        };
        let waiting = [
            w("a", "build"),
            w("b", "build"),
            w("c", "deploy"),
            w("d", ""),
        ];
        assert_eq!(
            admit(&waiting, &HashMap::new(), &limits, |_| None),
            ["a", "c", "d"]
        );
        let running = HashMap::from([("build".to_string(), 1)]);
        assert_eq!(admit(&waiting, &running, &limits, |_| None), ["c", "d"]);
    }

    #[test]
    fn the_global_limit_counts_what_runs() {
        let limits = Limits {
            total: Some(2),
            per_group: HashMap::new(),
        };
        let running = HashMap::from([("x".to_string(), 1)]);
        assert_eq!(
            admit(&[w("a", "p"), w("b", "q")], &running, &limits, |_| None),
            ["a"]
        );
    }

    #[test]
    fn held_runs_wait_and_the_pipeline_annotation_limits() {
        let mut held = w("a", "p");
        held.held = true;
        let waiting = [held, w("b", "p"), w("c", "p")];
        let got = admit(&waiting, &HashMap::new(), &Limits::default(), |g| {
            (g == "p").then_some(1)
        });
        assert_eq!(got, ["b"]);
    }

    proptest::proptest! {
        #[test]
        fn limits_hold_and_order_is_kept(
            groups in proptest::collection::vec(0u8..4, 0..40),
            total in 0usize..10,
            per in 1usize..4,
        ) {
            let names: Vec<String> = (0..groups.len()).map(|i| i.to_string()).collect();
            let gnames: Vec<String> = groups.iter().map(|g| format!("g{g}")).collect();
            let waiting: Vec<Waiting> = names.iter().zip(&gnames).map(|(k, g)| w(k, g)).collect();
            let limits = Limits { total: Some(total), per_group: HashMap::new() };
            let got = admit(&waiting, &HashMap::new(), &limits, |_| Some(per));
            proptest::prop_assert!(got.len() <= total);
            let mut per_group: HashMap<&str, usize> = HashMap::new();
            for k in &got {
                let i: usize = k.parse().unwrap_or(0);
                *per_group.entry(&gnames[i]).or_default() += 1;
            }
            proptest::prop_assert!(per_group.values().all(|n| *n <= per));
            let idx: Vec<usize> = got.iter().map(|k| k.parse().unwrap_or(0)).collect();
            proptest::prop_assert!(idx.windows(2).all(|p| p[0] < p[1]));
        }
    }
}
