//! Coscheduling by claim: the TaskRuns of one run that share a ReadWriteOnce claim workspace
//! run on one node, the job Tekton's affinity assistant does. The first Pod using a claim is
//! placed by the scheduler; every later Pod of the run using that claim requires that Pod's
//! node (by `metadata.name`, which names a node whatever its labels say). Pods that start at
//! the same time wait for the first to be placed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{
    Affinity, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
    PersistentVolumeClaim, Pod,
};
use kube::api::Api;
use slipway_engine::executor::{TaskRunPlan, VolumeSource};
use tokio::sync::OwnedMutexGuard;

use crate::volumes::claim_name;

/// Where each claim of each running run was first used: `(run uid, claim)` → node.
#[derive(Debug, Default)]
pub(crate) struct Placements {
    slots: Mutex<HashMap<(String, String), Slot>>,
}

type Slot = Arc<tokio::sync::Mutex<Option<String>>>;

impl Placements {
    /// Holds the placement of every claim in `claims` for run `root`, waiting while another
    /// TaskRun of the run is placing its first Pod on one of them. Locks are taken in name
    /// order, so two TaskRuns sharing two claims cannot wait on each other.
    pub(crate) async fn hold(&self, root: &str, mut claims: Vec<String>) -> Held {
        claims.sort();
        claims.dedup();
        let slots: Vec<(String, Slot)> = match self.slots.lock() {
            Ok(mut map) => claims
                .into_iter()
                .map(|c| {
                    let slot = map.entry((root.to_string(), c.clone())).or_default();
                    (c, slot.clone())
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        let mut guards = Vec::with_capacity(slots.len());
        for (claim, slot) in slots {
            guards.push((claim, slot.lock_owned().await));
        }
        Held { guards }
    }

    /// Forgets the placements of run `root` (it ended).
    pub(crate) fn forget(&self, root: &str) {
        if let Ok(mut map) = self.slots.lock() {
            map.retain(|(r, _), _| r != root);
        }
    }
}

/// The placements of one TaskRun's claims, held until its Pod is placed.
pub(crate) struct Held {
    guards: Vec<(String, OwnedMutexGuard<Option<String>>)>,
}

impl Held {
    /// The node an earlier Pod of the run placed one of these claims on (the first in name
    /// order when, unusually, two claims were placed apart).
    pub(crate) fn node(&self) -> Option<String> {
        self.guards.iter().find_map(|(_, g)| (**g).clone())
    }

    /// Claims placed on another node than `node`: a Pod needing both cannot mount them all.
    pub(crate) fn elsewhere(&self, node: &str) -> Vec<(String, String)> {
        self.guards
            .iter()
            .filter_map(|(c, g)| {
                g.as_deref()
                    .filter(|n| *n != node)
                    .map(|n| (c.clone(), n.to_string()))
            })
            .collect()
    }

    /// Whether this TaskRun's Pod places a claim for the first time (it must say where).
    pub(crate) fn places_first(&self) -> bool {
        self.guards.iter().any(|(_, g)| g.is_none())
    }

    /// Records that this TaskRun's Pod landed on `node`, for the claims not yet placed.
    pub(crate) fn placed(mut self, node: &str) {
        for (_, g) in &mut self.guards {
            if g.is_none() {
                **g = Some(node.to_string());
            }
        }
    }
}

/// Whether access modes let a claim be mounted from one node only (or say nothing, which
/// Kubernetes would refuse anyway).
fn one_node(modes: Option<&Vec<String>>) -> bool {
    let modes = modes.map(Vec::as_slice).unwrap_or_default();
    modes.is_empty()
        || modes
            .iter()
            .any(|m| m == "ReadWriteOnce" || m == "ReadWriteOncePod")
}

/// The claims behind the plan's workspaces that tie a Pod to one node: claims made from a
/// `volumeClaimTemplate` by their template's access modes, named claims by the cluster's
/// (a claim the executor cannot read counts as ReadWriteOnce, the common case).
pub(crate) async fn node_bound_claims(
    claims: &Api<PersistentVolumeClaim>,
    plan: &TaskRunPlan,
) -> Vec<String> {
    let mut out = Vec::new();
    for w in &plan.workspaces {
        match &w.source {
            VolumeSource::ClaimTemplate { key, template } => {
                let modes: Option<Vec<String>> = template
                    .pointer("/spec/accessModes")
                    .and_then(|m| serde_json::from_value(m.clone()).ok());
                if one_node(modes.as_ref()) {
                    out.push(claim_name(key));
                }
            }
            VolumeSource::Claim { name } => {
                let modes = match claims.get_opt(name).await {
                    Ok(Some(c)) => c.spec.and_then(|s| s.access_modes),
                    _ => None,
                };
                if one_node(modes.as_ref()) {
                    out.push(name.clone());
                }
            }
            _ => {}
        }
    }
    out
}

/// Makes `pod` require node `node`, on top of any node affinity it has (every term of a
/// required node affinity gets the requirement, so the terms still choose among themselves).
pub(crate) fn require_node(pod: &mut Pod, node: &str) {
    let requirement = NodeSelectorRequirement {
        key: "metadata.name".to_string(),
        operator: "In".to_string(),
        values: Some(vec![node.to_string()]),
    };
    let Some(spec) = pod.spec.as_mut() else {
        return;
    };
    let required = spec
        .affinity
        .get_or_insert_with(Affinity::default)
        .node_affinity
        .get_or_insert_with(NodeAffinity::default)
        .required_during_scheduling_ignored_during_execution
        .get_or_insert_with(NodeSelector::default);
    if required.node_selector_terms.is_empty() {
        required
            .node_selector_terms
            .push(NodeSelectorTerm::default());
    }
    for term in &mut required.node_selector_terms {
        term.match_fields
            .get_or_insert_with(Vec::new)
            .push(requirement.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodSpec;
    use serde_json::json;

    #[test]
    fn a_required_node_joins_every_existing_term() {
        let mut pod = Pod {
            spec: Some(PodSpec {
                affinity: serde_json::from_value(json!({"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["a"]}]},
                    {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["b"]}]}
                ]}}}))
                .expect("affinity"),
                ..PodSpec::default()
            }),
            ..Pod::default()
        };
        require_node(&mut pod, "node-1");
        let v = serde_json::to_value(&pod).expect("json");
        let terms = &v["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"];
        for t in terms.as_array().expect("terms") {
            assert_eq!(
                t["matchFields"],
                json!([{"key": "metadata.name", "operator": "In", "values": ["node-1"]}])
            );
            assert!(t["matchExpressions"].is_array());
        }
        let mut bare = Pod {
            spec: Some(PodSpec::default()),
            ..Pod::default()
        };
        require_node(&mut bare, "n");
        let v = serde_json::to_value(&bare).expect("json");
        assert_eq!(
            v["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
                ["nodeSelectorTerms"][0]["matchFields"][0]["values"],
            json!(["n"])
        );
    }

    #[test]
    fn access_modes_decide() {
        let m = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(one_node(m(&["ReadWriteOnce"]).as_ref()));
        assert!(one_node(m(&["ReadWriteOncePod"]).as_ref()));
        assert!(one_node(None));
        assert!(!one_node(m(&["ReadWriteMany"]).as_ref()));
        assert!(!one_node(m(&["ReadOnlyMany"]).as_ref()));
    }

    #[tokio::test]
    async fn later_holders_see_where_the_first_placed_the_claim() {
        let places = Arc::new(Placements::default());
        let first = places.hold("run", vec!["b".into(), "a".into()]).await;
        assert!(first.places_first());
        assert_eq!(first.node(), None);
        // A second TaskRun sharing claim `a` waits for the first to be placed.
        let waiting = {
            let places = places.clone();
            tokio::spawn(async move { places.hold("run", vec!["a".into()]).await.node() })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "it waits for the first placement");
        first.placed("node-b");
        assert_eq!(waiting.await.expect("joins"), Some("node-b".to_string()));
        // Another run's claim of the same name is its own.
        assert_eq!(places.hold("other", vec!["a".into()]).await.node(), None);
        places.forget("run");
        assert_eq!(places.hold("run", vec!["a".into()]).await.node(), None);
    }
}
