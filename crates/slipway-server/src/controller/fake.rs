//! An in-memory [`Cluster`] with the store's version rules, and the controller's tests: whole
//! rounds against it, with agents played by the test.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde_json::{Value, json};
use slipway_store::{Expect, PrewarmKey, PrewarmObject, PrewarmOutcome};

use super::world::{Config, Memory, format_time};
use super::{Cluster, ClusterError, round};

type Id = (String, String, String);

#[derive(Default)]
pub struct Fake {
    objects: Mutex<(i64, BTreeMap<Id, PrewarmObject>)>,
}

fn id(k: PrewarmKey<'_>) -> Id {
    (k.kind.into(), k.namespace.into(), k.name.into())
}

#[async_trait]
impl Cluster for Fake {
    async fn list(&self, kind: &str) -> Result<Vec<PrewarmObject>, ClusterError> {
        let g = self.objects.lock().expect("lock");
        Ok(g.1.values().filter(|o| o.kind == kind).cloned().collect())
    }
    async fn get(&self, key: PrewarmKey<'_>) -> Result<Option<PrewarmObject>, ClusterError> {
        Ok(self.objects.lock().expect("lock").1.get(&id(key)).cloned())
    }
    async fn write(
        &self,
        key: PrewarmKey<'_>,
        object: &Value,
        expect: Expect,
    ) -> Result<PrewarmOutcome, ClusterError> {
        let mut g = self.objects.lock().expect("lock");
        let old = g.1.get(&id(key)).cloned();
        let uid = match (&old, expect) {
            (Some(_), Expect::Absent) => return Ok(PrewarmOutcome::Exists),
            (None, Expect::Version(_)) => return Ok(PrewarmOutcome::Missing),
            (Some(o), Expect::Version(v)) if o.resource_version != v => {
                return Ok(PrewarmOutcome::Stale(o.resource_version));
            }
            (Some(o), _) => o.uid.clone(),
            (None, _) => format!("uid-{}", key.name),
        };
        g.0 += 1;
        let o = PrewarmObject {
            kind: key.kind.into(),
            namespace: key.namespace.into(),
            name: key.name.into(),
            uid,
            object: object.clone(),
            resource_version: g.0,
            generation: 1,
            created_at: 0,
        };
        g.1.insert(id(key), o.clone());
        Ok(PrewarmOutcome::Done(o))
    }
    async fn delete(&self, key: PrewarmKey<'_>) -> Result<(), ClusterError> {
        self.objects.lock().expect("lock").1.remove(&id(key));
        Ok(())
    }
}

/// A controller with a fake cluster and a clock the test moves.
struct Bench {
    cluster: Fake,
    memory: Memory,
    config: Config,
    now: SystemTime,
}

impl Bench {
    fn new() -> Bench {
        Bench {
            cluster: Fake::default(),
            memory: Memory::default(),
            config: Config::default(),
            now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        }
    }

    async fn put(&self, kind: &str, ns: &str, name: &str, v: Value) {
        let key = PrewarmKey {
            kind,
            namespace: ns,
            name,
        };
        let expect = match self.cluster.get(key).await.expect("get") {
            Some(o) => Expect::Version(o.resource_version),
            None => Expect::Absent,
        };
        self.cluster.write(key, &v, expect).await.expect("write");
    }

    async fn node(&self, name: &str, labels: Value) {
        let beat = format_time(self.now);
        let v = json!({"metadata": {"name": name, "labels": labels}, "status": {"conditions": [
            {"type": "Ready", "status": "True", "lastHeartbeatTime": beat}]}});
        self.put("Node", "", name, v).await;
    }

    async fn job(&self, name: &str, spec: Value) {
        let mut spec = spec;
        let mut typed: slipway_model::kinds::kruise::ImagePullJobSpec =
            serde_json::from_value(spec.clone()).expect("spec");
        typed.template.default_fields();
        spec = serde_json::to_value(typed).expect("json");
        self.put(
            "ImagePullJob",
            "ns",
            name,
            json!({"metadata": {"name": name}, "spec": spec}),
        )
        .await;
    }

    async fn round(&mut self) {
        round(&self.cluster, &mut self.memory, &self.config, self.now)
            .await
            .expect("round");
    }

    async fn object(&self, kind: &str, ns: &str, name: &str) -> Option<Value> {
        let key = PrewarmKey {
            kind,
            namespace: ns,
            name,
        };
        self.cluster.get(key).await.expect("get").map(|o| o.object)
    }

    async fn status(&self, job: &str) -> Value {
        self.object("ImagePullJob", "ns", job).await.expect("job")["status"].clone()
    }

    /// The tags a node's NodeImage asks for, as `name:tag@version`.
    async fn asked(&self, node: &str) -> Vec<String> {
        let Some(o) = self.object("NodeImage", "", node).await else {
            return vec![];
        };
        let mut out = vec![];
        for (name, image) in o["spec"]["images"].as_object().into_iter().flatten() {
            for t in image["tags"].as_array().into_iter().flatten() {
                out.push(format!(
                    "{name}:{}@{}",
                    t["tag"].as_str().unwrap_or(""),
                    t["version"]
                ));
            }
        }
        out
    }

    /// Plays the node's agent: every tag it asks for reaches `phase`.
    async fn report(&self, node: &str, phase: &str, message: &str) {
        let mut o = self.object("NodeImage", "", node).await.expect("nodeimage");
        let mut statuses = serde_json::Map::new();
        for (name, image) in o["spec"]["images"].as_object().into_iter().flatten() {
            let tags: Vec<Value> = image["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| {
                    json!({"tag": t["tag"], "phase": phase, "version": t["version"],
                    "message": message, "completionTime": format_time(self.now)})
                })
                .collect();
            statuses.insert(name.clone(), json!({ "tags": tags }));
        }
        o["status"] = json!({ "imageStatuses": statuses });
        self.put("NodeImage", "", node, o).await;
    }
}

const IMAGE: &str = "127.0.0.1:5000/app:1";

#[tokio::test]
async fn parallelism_bounds_the_nodes_in_flight_until_the_job_completes() {
    let mut b = Bench::new();
    for n in ["n1", "n2", "n3"] {
        b.node(n, json!({})).await;
    }
    b.job("warm", json!({"image": IMAGE, "parallelism": 2}))
        .await;
    b.round().await;
    assert_eq!(b.asked("n1").await, ["127.0.0.1:5000/app:1@1"]);
    assert_eq!(b.asked("n2").await.len(), 1);
    assert!(b.asked("n3").await.is_empty(), "parallelism 2");
    let s = b.status("warm").await;
    assert_eq!(
        (s["desired"].clone(), s["active"].clone()),
        (json!(3), json!(2))
    );
    assert_eq!(s["message"], "job is running, progress 0.0%");
    b.round().await;
    assert!(b.asked("n3").await.is_empty(), "nothing finished yet");
    b.report("n1", "Succeeded", "").await;
    b.round().await;
    assert_eq!(b.asked("n3").await.len(), 1, "a slot freed");
    b.report("n2", "Succeeded", "").await;
    b.report("n3", "Succeeded", "").await;
    b.round().await;
    let s = b.status("warm").await;
    assert_eq!(s["succeeded"], 3);
    assert_eq!(s["message"], "job has completed");
    assert!(s["completionTime"].is_string());
    assert!(s["startTime"].is_string());
}

#[tokio::test]
async fn a_failed_node_is_retried_with_backoff_then_counted_failed() {
    let mut b = Bench::new();
    b.node("n1", json!({})).await;
    b.job("warm", json!({"image": IMAGE})).await;
    b.round().await;
    b.report("n1", "Failed", "not found").await;
    b.round().await;
    assert_eq!(
        b.asked("n1").await,
        ["127.0.0.1:5000/app:1@1"],
        "backoff first"
    );
    let s = b.status("warm").await;
    assert_eq!(s["failedNodes"], json!(["n1"]));
    assert!(s["completionTime"].is_null(), "retries are left: {s}");
    for version in [2, 3] {
        b.now += Duration::from_secs(10);
        b.node("n1", json!({})).await;
        b.round().await;
        assert_eq!(
            b.asked("n1").await,
            [format!("127.0.0.1:5000/app:1@{version}")],
            "retried as a new version"
        );
        b.report("n1", "Failed", "not found").await;
    }
    b.now += Duration::from_secs(60);
    b.node("n1", json!({})).await;
    b.round().await;
    let s = b.status("warm").await;
    assert_eq!(
        (s["failed"].clone(), s["message"].clone()),
        (json!(1), json!("job has completed"))
    );
    assert_eq!(
        b.asked("n1").await.len(),
        1,
        "the job keeps its tag until deleted"
    );
}

#[tokio::test]
async fn a_silent_node_fails_with_the_reason_and_the_job_ends() {
    let mut b = Bench::new();
    b.node("n1", json!({})).await;
    b.node("n2", json!({})).await;
    b.job("warm", json!({"image": IMAGE, "parallelism": 2}))
        .await;
    b.round().await;
    b.report("n1", "Succeeded", "").await;
    b.now += Duration::from_secs(60);
    b.node("n1", json!({})).await;
    b.round().await;
    let s = b.status("warm").await;
    assert_eq!(s["failedNodes"], json!(["n2"]));
    assert_eq!(s["message"], "job has completed");
}

#[tokio::test]
async fn labels_choose_nodes_and_a_node_that_joins_later_is_covered() {
    let mut b = Bench::new();
    b.node("n1", json!({"pool": "a"})).await;
    b.node("n2", json!({"pool": "b"})).await;
    b.job(
        "warm",
        json!({"image": IMAGE, "parallelism": 5, "selector": {"matchLabels": {"pool": "a"}},
               "completionPolicy": {"type": "Never"}}),
    )
    .await;
    b.round().await;
    assert_eq!(b.asked("n1").await.len(), 1);
    assert!(b.asked("n2").await.is_empty());
    b.report("n1", "Succeeded", "").await;
    b.node("n3", json!({"pool": "a"})).await;
    b.round().await;
    assert_eq!(b.asked("n3").await.len(), 1, "joined later");
    let s = b.status("warm").await;
    assert_eq!(
        (s["desired"].clone(), s["succeeded"].clone()),
        (json!(2), json!(1))
    );
    assert!(s["completionTime"].is_null(), "Never jobs do not complete");
    // A selector edit takes effect: n1 leaves the job and loses the tag.
    b.job(
        "warm",
        json!({"image": IMAGE, "parallelism": 5, "selector": {"names": ["n3"]},
               "completionPolicy": {"type": "Never"}}),
    )
    .await;
    b.round().await;
    assert!(b.asked("n1").await.is_empty());
    assert_eq!(b.asked("n3").await.len(), 1);
}

#[tokio::test]
async fn deleting_a_job_takes_its_tags_away() {
    let mut b = Bench::new();
    b.node("n1", json!({})).await;
    b.job("warm", json!({"image": IMAGE})).await;
    b.round().await;
    assert_eq!(b.asked("n1").await.len(), 1);
    b.cluster
        .delete(PrewarmKey {
            kind: "ImagePullJob",
            namespace: "ns",
            name: "warm",
        })
        .await
        .expect("delete");
    b.round().await;
    assert!(b.asked("n1").await.is_empty());
}

#[tokio::test]
async fn the_deadline_fails_unfinished_nodes_and_drops_their_pulls() {
    let mut b = Bench::new();
    b.node("n1", json!({})).await;
    b.node("n2", json!({})).await;
    b.job(
        "warm",
        json!({"image": IMAGE, "parallelism": 2, "pullPolicy": {"timeoutSeconds": 10},
               "completionPolicy": {"activeDeadlineSeconds": 30, "ttlSecondsAfterFinished": 60}}),
    )
    .await;
    b.round().await;
    b.report("n1", "Succeeded", "").await;
    b.now += Duration::from_secs(31);
    for n in ["n1", "n2"] {
        b.node(n, json!({})).await;
    }
    b.round().await;
    let s = b.status("warm").await;
    assert_eq!(s["message"], "job exceeds activeDeadlineSeconds");
    assert_eq!(s["failedNodes"], json!(["n2"]));
    b.round().await;
    assert!(b.asked("n2").await.is_empty(), "the pull is dropped");
    assert_eq!(b.asked("n1").await.len(), 1);
    // TTL: deleted a minute after completion, and its tags with it.
    b.now += Duration::from_secs(61);
    b.round().await;
    assert!(b.object("ImagePullJob", "ns", "warm").await.is_none());
    b.round().await;
    assert!(b.asked("n1").await.is_empty());
}

#[tokio::test]
async fn a_list_becomes_one_job_per_image() {
    let mut b = Bench::new();
    b.node("n1", json!({})).await;
    b.put(
        "ImageListPullJob",
        "ns",
        "list",
        json!({"metadata": {"name": "list"}, "spec": {"images": ["r/a:1", "r/b:2"], "parallelism": 1}}),
    )
    .await;
    b.round().await;
    b.round().await;
    let mut asked = b.asked("n1").await;
    asked.sort();
    assert_eq!(asked, ["r/a:1@1", "r/b:2@1"]);
    b.report("n1", "Succeeded", "").await;
    b.round().await;
    b.round().await;
    let s = b
        .object("ImageListPullJob", "ns", "list")
        .await
        .expect("list")["status"]
        .clone();
    assert_eq!(
        (s["desired"].clone(), s["succeeded"].clone()),
        (json!(2), json!(2))
    );
    b.cluster
        .delete(PrewarmKey {
            kind: "ImageListPullJob",
            namespace: "ns",
            name: "list",
        })
        .await
        .expect("delete");
    b.round().await;
    assert!(
        b.cluster
            .list("ImagePullJob")
            .await
            .expect("list")
            .is_empty()
    );
}

#[tokio::test]
async fn a_never_job_asks_a_finished_node_again_a_day_later() {
    let mut b = Bench::new();
    b.node("n1", json!({})).await;
    b.job(
        "warm",
        json!({"image": IMAGE, "completionPolicy": {"type": "Never"}}),
    )
    .await;
    b.round().await;
    b.report("n1", "Succeeded", "").await;
    b.round().await;
    assert_eq!(b.asked("n1").await, ["127.0.0.1:5000/app:1@1"]);
    b.now += Duration::from_secs(24 * 3600 + 1);
    b.node("n1", json!({})).await;
    b.round().await;
    assert_eq!(
        b.asked("n1").await,
        ["127.0.0.1:5000/app:1@2"],
        "re-checked"
    );
}

#[tokio::test]
async fn pull_policy_edits_reach_the_nodes_tags() {
    let mut b = Bench::new();
    b.node("n1", json!({})).await;
    b.job(
        "warm",
        json!({"image": IMAGE, "pullPolicy": {"timeoutSeconds": 60}}),
    )
    .await;
    b.round().await;
    let tag = |o: Value| o["spec"]["images"]["127.0.0.1:5000/app"]["tags"][0].clone();
    let t = tag(b.object("NodeImage", "", "n1").await.expect("nodeimage"));
    assert_eq!(t["pullPolicy"]["timeoutSeconds"], 60);
    assert_eq!(t["imagePullPolicy"], "IfNotPresent");
    b.job(
        "warm",
        json!({"image": IMAGE, "pullPolicy": {"timeoutSeconds": 900, "backoffLimit": 1},
               "imagePullPolicy": "Always", "pullSecrets": ["reg"]}),
    )
    .await;
    b.round().await;
    let t = tag(b.object("NodeImage", "", "n1").await.expect("nodeimage"));
    assert_eq!(
        t["pullPolicy"],
        json!({"timeoutSeconds": 900, "backoffLimit": 1})
    );
    assert_eq!(t["imagePullPolicy"], "Always");
    assert_eq!(
        t["pullSecrets"],
        json!([{"namespace": "ns", "name": "reg"}])
    );
}
