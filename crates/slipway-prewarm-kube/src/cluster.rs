//! The controller's [`Cluster`] over a Kubernetes API server: reads come from the watch-backed
//! [`Cache`], writes go to the API with the `resourceVersion` the controller saw as the
//! precondition, and a status through the `status` subresource.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use kube::api::{DeleteParams, DynamicObject, PostParams};
use kube::runtime::watcher;
use serde_json::{Value, json};
use slipway_server::controller::{Cluster, ClusterError, Config};
use slipway_store::{Expect, PrewarmKey, PrewarmObject, PrewarmOutcome};
use tokio_util::sync::CancellationToken;

use crate::cache::Cache;
use crate::error::{KubeApiError, status_code};
use crate::kind::{Kind, to_prewarm, to_value, version_number};

/// How long a watch the API server refuses (a `401`, `403` or `404`) may take to come right at
/// start: CRDs applied just before may still be settling.
const REFUSED_GRACE: Duration = Duration::from_secs(5);

/// How the controller runs on a cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The controller's pacing and grace.
    pub controller: Config,
    /// Only the jobs of this namespace (every namespace when `None`).
    pub namespace: Option<String>,
    /// How long the watches may take to list everything at start.
    pub sync_timeout: Duration,
    /// The API server's address, for messages.
    pub server: String,
    /// Act only while holding this Lease (several replicas may run); `None`: act at once.
    pub election: Option<crate::lease::Election>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            controller: Config::default(),
            namespace: None,
            sync_timeout: Duration::from_secs(30),
            server: "the API server".into(),
            election: None,
        }
    }
}

/// Why the controller could not start on the cluster.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A watch did not list its objects in time.
    #[error("failed to watch {what} on {server} (waited {waited:?}){why}")]
    NotSynced {
        /// The resources not listed, e.g. `imagepulljobs.apps.kruise.io`.
        what: String,
        /// The API server.
        server: String,
        /// How long it waited.
        waited: Duration,
        /// The last error of those watches, as `: ...`, or nothing.
        why: String,
    },
}

/// The controller's world on a Kubernetes API server.
pub struct KubeCluster {
    client: kube::Client,
    server: String,
    cache: Arc<Cache>,
    /// Objects a write found changed: the next `get` asks the API server, not the cache.
    fresh: Mutex<HashSet<(Kind, String, String)>>,
    /// Each job's problem as the webhook would see it, by kind, uid and generation.
    verdicts: Mutex<HashMap<(Kind, String, i64), Option<String>>>,
}

impl std::fmt::Debug for KubeCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeCluster")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl KubeCluster {
    /// Starts the watches (jobs of `namespace`, or of all; NodeImages; Nodes) until `shutdown`.
    pub fn start(
        client: kube::Client,
        server: &str,
        namespace: Option<&str>,
        shutdown: CancellationToken,
    ) -> KubeCluster {
        let watches = Kind::ALL
            .into_iter()
            .map(|k| (k, k.api(&client, namespace), watcher::Config::default()))
            .collect();
        KubeCluster {
            cache: Cache::start(watches, shutdown),
            client,
            server: server.to_string(),
            fresh: Mutex::new(HashSet::new()),
            verdicts: Mutex::new(HashMap::new()),
        }
    }

    /// Waits until every watch has listed once, at most `timeout` (a few seconds when the
    /// API server refuses outright: no CRDs, or no permission).
    pub async fn synced(&self, timeout: Duration) -> Result<(), StartError> {
        let started = tokio::time::Instant::now();
        while !self.cache.synced() {
            let missing = self.cache.unsynced();
            let refused = missing
                .iter()
                .any(|(_, f)| f.as_ref().is_some_and(|f| f.refused));
            let waited = started.elapsed();
            if waited >= timeout || (refused && waited >= REFUSED_GRACE) {
                let what = missing
                    .iter()
                    .map(|(k, _)| {
                        let r = k.resource();
                        if r.group.is_empty() {
                            r.plural
                        } else {
                            format!("{}.{}", r.plural, r.group)
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                let why = missing
                    .iter()
                    .find_map(|(_, f)| f.clone())
                    .map(|f| format!(": {}", f.why))
                    .unwrap_or_default();
                return Err(StartError::NotSynced {
                    what,
                    server: self.server.clone(),
                    waited: Duration::from_secs(waited.as_secs()),
                    why,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    fn fail(&self, action: String, e: kube::Error) -> ClusterError {
        ClusterError::Backend {
            source: Box::new(KubeApiError::new(action.clone(), &self.server, e)),
            action,
        }
    }

    fn mark_fresh(&self, kind: Kind, key: PrewarmKey<'_>) {
        self.fresh
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert((kind, key.namespace.to_string(), key.name.to_string()));
    }

    fn take_fresh(&self, kind: Kind, key: PrewarmKey<'_>) -> bool {
        self.fresh
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&(kind, key.namespace.to_string(), key.name.to_string()))
    }

    /// Creates `object` (a `409` is [`PrewarmOutcome::Exists`]).
    async fn create(
        &self,
        kind: Kind,
        key: PrewarmKey<'_>,
        object: &Value,
    ) -> Result<PrewarmOutcome, ClusterError> {
        let mut body = object.clone();
        if let Some(m) = body["metadata"].as_object_mut() {
            m.remove("resourceVersion");
            m.remove("uid");
        }
        let api = kind.api(&self.client, Some(key.namespace));
        let action = || format!("create {} {}", kind.name(), shown(key));
        let o: DynamicObject = serde_json::from_value(body).map_err(|e| ClusterError::Backend {
            action: action(),
            source: Box::new(e),
        })?;
        match api.create(&PostParams::default(), &o).await {
            Ok(created) => Ok(self.done(kind, &created)),
            Err(e) if status_code(&e) == Some(409) => {
                self.mark_fresh(kind, key);
                Ok(PrewarmOutcome::Exists)
            }
            // The namespace went away.
            Err(e) if status_code(&e) == Some(404) => Ok(PrewarmOutcome::Missing),
            Err(e) => Err(self.fail(action(), e)),
        }
    }

    /// Replaces `object` seen at `version`: the object when more than its status changed, then
    /// its status through the subresource when it differs from the server's.
    async fn replace(
        &self,
        kind: Kind,
        key: PrewarmKey<'_>,
        object: &Value,
        version: i64,
    ) -> Result<PrewarmOutcome, ClusterError> {
        let without_status = |v: &Value| {
            let mut v = v.clone();
            if let Some(m) = v.as_object_mut() {
                m.remove("status");
            }
            v
        };
        // The server's object at `version`, as far as this process knows it.
        let mut current = self
            .cache
            .get(kind, key.namespace, key.name)
            .filter(|c| version_number(c) == version);
        let mut body = object.clone();
        body["metadata"]["resourceVersion"] = json!(version.to_string());
        if current
            .as_ref()
            .is_none_or(|c| without_status(c) != without_status(object))
        {
            match self.put(kind, key, &body, false).await? {
                Ok(o) => current = Some(o),
                Err(outcome) => return Ok(outcome),
            }
        }
        let status_differs = current
            .as_ref()
            .is_none_or(|c| c["status"] != object["status"]);
        if !object["status"].is_null() && status_differs {
            if let Some(c) = &current {
                body["metadata"]["resourceVersion"] = c["metadata"]["resourceVersion"].clone();
            }
            match self.put(kind, key, &body, true).await? {
                Ok(o) => current = Some(o),
                Err(outcome) => return Ok(outcome),
            }
        }
        Ok(match current {
            Some(c) => PrewarmOutcome::Done(to_prewarm(kind, &c)),
            None => PrewarmOutcome::Missing,
        })
    }

    /// One PUT of `body` (to the status subresource when `status`): the object as the server
    /// answered, or the outcome a refusal means (`409` stale, `404` missing).
    async fn put(
        &self,
        kind: Kind,
        key: PrewarmKey<'_>,
        body: &Value,
        status: bool,
    ) -> Result<Result<Value, PrewarmOutcome>, ClusterError> {
        let what = if status { "the status of " } else { "" };
        let action = || format!("update {what}{} {}", kind.name(), shown(key));
        let o: DynamicObject =
            serde_json::from_value(body.clone()).map_err(|e| ClusterError::Backend {
                action: action(),
                source: Box::new(e),
            })?;
        let api = kind.api(&self.client, Some(key.namespace));
        let pp = PostParams::default();
        let answer = if status {
            api.replace_status(key.name, &pp, &o).await
        } else {
            api.replace(key.name, &pp, &o).await
        };
        match answer {
            Ok(o) => {
                let v = to_value(kind, &o);
                self.cache.remember(kind, v.clone());
                Ok(Ok(v))
            }
            Err(e) if status_code(&e) == Some(409) => {
                self.mark_fresh(kind, key);
                Ok(Err(PrewarmOutcome::Stale(version_number(body))))
            }
            Err(e) if status_code(&e) == Some(404) => Ok(Err(PrewarmOutcome::Missing)),
            Err(e) => Err(self.fail(action(), e)),
        }
    }

    /// Whether a job passes what OpenKruise's webhook checks; one that does not is left alone
    /// but for its status, which says why (written once per spec generation).
    async fn admitted(&self, kind: Kind, o: &PrewarmObject) -> Result<bool, ClusterError> {
        let id = (kind, o.uid.clone(), o.generation);
        let known = self
            .verdicts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&id)
            .cloned();
        let verdict = match known {
            Some(v) => v,
            None => {
                let v = crate::admission::problem(&o.object);
                let mut verdicts = self
                    .verdicts
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                // Older generations are not asked about again.
                verdicts.retain(|(_, uid, _), _| *uid != o.uid);
                verdicts.insert(id, v.clone());
                v
            }
        };
        let Some(problem) = verdict else {
            return Ok(true);
        };
        let status = json!({ "message": format!("refused: {problem}") });
        if o.object["status"] != status {
            let mut object = o.object.clone();
            object["status"] = status;
            let key = PrewarmKey {
                kind: kind.name(),
                namespace: &o.namespace,
                name: &o.name,
            };
            // A conflict is tried again next round.
            self.replace(kind, key, &object, o.resource_version).await?;
        }
        Ok(false)
    }

    fn done(&self, kind: Kind, o: &DynamicObject) -> PrewarmOutcome {
        let v = to_value(kind, o);
        self.cache.remember(kind, v.clone());
        PrewarmOutcome::Done(to_prewarm(kind, &v))
    }
}

/// `namespace/name`, or `name` for a cluster-scoped object.
fn shown(key: PrewarmKey<'_>) -> String {
    if key.namespace.is_empty() {
        key.name.to_string()
    } else {
        format!("{}/{}", key.namespace, key.name)
    }
}

/// A Node as the controller reads heartbeats: a `Ready` condition that is `True` counts as
/// answering now. Kubelets renew a Lease rather than this condition, and the cluster's node
/// lifecycle controller turns it `Unknown` after its own grace period, so Kubernetes' verdict is
/// taken as it stands.
fn node_as_seen(mut node: Value, now: SystemTime) -> Value {
    let beat = humantime::format_rfc3339_seconds(now).to_string();
    if let Some(conditions) = node["status"]["conditions"].as_array_mut() {
        for c in conditions {
            if c["type"] == "Ready" && c["status"] == "True" {
                c["lastHeartbeatTime"] = json!(beat);
            }
        }
    }
    node
}

fn unknown(kind: &str) -> ClusterError {
    ClusterError::Backend {
        action: format!("find kind {kind} on the cluster"),
        source: "slipway reads only ImagePullJob, ImageListPullJob, NodeImage and Node".into(),
    }
}

#[async_trait]
impl Cluster for KubeCluster {
    async fn list(&self, kind: &str) -> Result<Vec<PrewarmObject>, ClusterError> {
        let k = Kind::from_name(kind).ok_or_else(|| unknown(kind))?;
        let now = SystemTime::now();
        let mut out = Vec::new();
        let mut listed = HashSet::new();
        for v in self.cache.list(k) {
            let o = match k {
                Kind::Node => to_prewarm(k, &node_as_seen(v, now)),
                _ => to_prewarm(k, &v),
            };
            if k.namespaced() && !self.admitted(k, &o).await? {
                listed.insert(o.uid);
                continue;
            }
            listed.insert(o.uid.clone());
            out.push(o);
        }
        // Verdicts on jobs gone are forgotten.
        self.verdicts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|(kind, uid, _), _| *kind != k || listed.contains(uid));
        Ok(out)
    }

    async fn get(&self, key: PrewarmKey<'_>) -> Result<Option<PrewarmObject>, ClusterError> {
        let k = Kind::from_name(key.kind).ok_or_else(|| unknown(key.kind))?;
        if !self.take_fresh(k, key) {
            return Ok(self
                .cache
                .get(k, key.namespace, key.name)
                .map(|v| to_prewarm(k, &v)));
        }
        let api = k.api(&self.client, Some(key.namespace));
        match api.get_opt(key.name).await {
            Ok(Some(o)) => {
                let v = to_value(k, &o);
                self.cache.remember(k, v.clone());
                Ok(Some(to_prewarm(k, &v)))
            }
            Ok(None) => {
                self.cache.forget(k, key.namespace, key.name);
                Ok(None)
            }
            Err(e) => {
                self.mark_fresh(k, key);
                Err(self.fail(format!("read {} {}", k.name(), shown(key)), e))
            }
        }
    }

    async fn write(
        &self,
        key: PrewarmKey<'_>,
        object: &Value,
        expect: Expect,
    ) -> Result<PrewarmOutcome, ClusterError> {
        let k = Kind::from_name(key.kind).ok_or_else(|| unknown(key.kind))?;
        match expect {
            Expect::Absent => self.create(k, key, object).await,
            Expect::Version(v) => self.replace(k, key, object, v).await,
        }
    }

    async fn delete(&self, key: PrewarmKey<'_>) -> Result<(), ClusterError> {
        let k = Kind::from_name(key.kind).ok_or_else(|| unknown(key.kind))?;
        let api = k.api(&self.client, Some(key.namespace));
        match api.delete(key.name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(e) if status_code(&e) == Some(404) => {}
            Err(e) => return Err(self.fail(format!("delete {} {}", k.name(), shown(key)), e)),
        }
        self.cache.forget(k, key.namespace, key.name);
        Ok(())
    }
}

/// Runs the pre-warming controller against the cluster `client` reaches until `shutdown`:
/// watches the jobs, NodeImages and Nodes, then runs a round every `config.controller.interval`.
pub async fn run_on_cluster(
    client: kube::Client,
    config: ClusterConfig,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    let watches = shutdown.child_token();
    let cluster = KubeCluster::start(
        client,
        &config.server,
        config.namespace.as_deref(),
        watches.clone(),
    );
    let synced = tokio::select! {
        () = shutdown.cancelled() => return Ok(()),
        s = cluster.synced(config.sync_timeout) => s,
    };
    if let Err(e) = synced {
        watches.cancel();
        return Err(e);
    }
    let controller = Config {
        namespace: config.namespace.clone(),
        ..config.controller
    };
    let cluster: Arc<dyn Cluster> = Arc::new(cluster);
    match config.election {
        None => {
            slipway_server::controller::run(cluster, controller, shutdown.cancelled_owned()).await
        }
        Some(election) => crate::lease::lead(&election, cluster, controller, &shutdown).await,
    }
    watches.cancel();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::{self, Seen};

    const JOBS: &str = "/apis/apps.kruise.io/v1alpha1/imagepulljobs";
    const JOB: &str = "/apis/apps.kruise.io/v1alpha1/namespaces/default/imagepulljobs/j";

    fn job(rv: &str) -> Value {
        json!({"apiVersion": "apps.kruise.io/v1alpha1", "kind": "ImagePullJob",
               "metadata": {"name": "j", "namespace": "default", "uid": "u-j", "resourceVersion": rv},
               "spec": {"image": "r/app:1"}})
    }

    fn key() -> PrewarmKey<'static> {
        PrewarmKey {
            kind: "ImagePullJob",
            namespace: "default",
            name: "j",
        }
    }

    /// A cluster over a mock API server holding job `j` at version 5 (a PUT at version 5
    /// succeeds as version 6; any other version conflicts), and nothing else.
    async fn cluster() -> (KubeCluster, mock::Log) {
        let (client, log) = mock::client(|s: &Seen| match (s.method.as_str(), s.path()) {
            ("GET", JOBS) => (200, mock::list(vec![job("5")])),
            ("GET", JOB) => (200, job("9")),
            ("GET", _) => (200, mock::list(vec![])),
            ("PUT", p) if p.starts_with(JOB) => {
                if s.body["metadata"]["resourceVersion"] == "5" {
                    let mut o = s.body.clone();
                    o["metadata"]["resourceVersion"] = json!("6");
                    (200, o)
                } else {
                    (409, mock::status(409, "Conflict"))
                }
            }
            ("POST", "/apis/apps.kruise.io/v1alpha1/namespaces/default/imagepulljobs") => {
                (409, mock::status(409, "AlreadyExists"))
            }
            _ => (404, mock::status(404, "NotFound")),
        });
        let c = KubeCluster::start(client, "http://mock", None, CancellationToken::new());
        c.synced(Duration::from_secs(5)).await.expect("synced");
        (c, log)
    }

    fn writes(log: &mock::Log) -> Vec<Seen> {
        let seen = log.lock().expect("lock");
        seen.iter().filter(|s| s.method != "GET").cloned().collect()
    }

    #[tokio::test]
    async fn a_status_goes_to_the_subresource_with_the_version_the_controller_saw() {
        let (c, log) = cluster().await;
        let read = c.get(key()).await.expect("get").expect("cached");
        assert_eq!(read.resource_version, 5);
        let mut object = read.object.clone();
        object["status"] = json!({"desired": 2, "active": 2});
        let out = c
            .write(key(), &object, Expect::Version(5))
            .await
            .expect("write");
        assert!(
            matches!(out, PrewarmOutcome::Done(ref o) if o.resource_version == 6),
            "{out:?}"
        );
        let w = writes(&log);
        assert_eq!(w.len(), 1, "only the status changed: {w:?}");
        assert_eq!(w[0].method, "PUT");
        assert_eq!(w[0].path(), format!("{JOB}/status"));
        assert_eq!(w[0].body["metadata"]["resourceVersion"], "5");
        assert_eq!(w[0].body["status"]["active"], 2);
        // Read-your-writes: the cache holds what the server answered.
        let again = c.get(key()).await.expect("get").expect("cached");
        assert_eq!(again.resource_version, 6);
    }

    #[tokio::test]
    async fn a_cluster_without_the_crds_is_said_within_seconds() {
        let (client, _) = mock::client(|s: &Seen| {
            if s.path().starts_with("/apis/apps.kruise.io/") {
                (404, mock::status(404, "NotFound"))
            } else {
                (200, mock::list(vec![]))
            }
        });
        let c = KubeCluster::start(client, "http://mock", None, CancellationToken::new());
        let e = c
            .synced(Duration::from_secs(60))
            .await
            .expect_err("no CRDs");
        assert_eq!(
            e.to_string(),
            "failed to watch imagepulljobs.apps.kruise.io, imagelistpulljobs.apps.kruise.io, \
             nodeimages.apps.kruise.io on http://mock (waited 5s): the API server answered 404 \
             NotFound: the server says NotFound"
        );
    }

    #[tokio::test]
    async fn a_spec_change_goes_to_the_object_alone() {
        let (c, log) = cluster().await;
        let mut object = job("5");
        object["spec"]["image"] = json!("r/app:2");
        let out = c
            .write(key(), &object, Expect::Version(5))
            .await
            .expect("write");
        assert!(
            matches!(out, PrewarmOutcome::Done(ref o) if o.resource_version == 6),
            "{out:?}"
        );
        let w = writes(&log);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!((w[0].method.as_str(), w[0].path()), ("PUT", JOB));
        assert_eq!(w[0].body["spec"]["image"], "r/app:2");
        assert_eq!(w[0].body["metadata"]["resourceVersion"], "5");
    }

    #[tokio::test]
    async fn a_stale_version_is_a_conflict_and_the_next_read_asks_the_server() {
        let (c, log) = cluster().await;
        let mut object = job("4");
        object["spec"]["image"] = json!("r/app:2");
        let out = c
            .write(key(), &object, Expect::Version(4))
            .await
            .expect("write");
        assert_eq!(out, PrewarmOutcome::Stale(4));
        let w = writes(&log);
        assert_eq!((w[0].method.as_str(), w[0].path()), ("PUT", JOB), "{w:?}");
        assert_eq!(w[0].body["metadata"]["resourceVersion"], "4");
        let fresh = c.get(key()).await.expect("get").expect("there");
        assert_eq!(
            fresh.resource_version, 9,
            "read from the server, not the cache"
        );
        assert!(
            log.lock()
                .expect("lock")
                .iter()
                .any(|s| s.method == "GET" && s.path() == JOB)
        );
        // A create of what exists is `Exists`, not an error.
        let out = c
            .write(key(), &job("1"), Expect::Absent)
            .await
            .expect("create");
        assert_eq!(out, PrewarmOutcome::Exists);
    }

    #[test]
    fn a_ready_node_counts_as_answering_and_others_do_not() {
        let node = |status: &str| {
            json!({"metadata": {"name": "n1"}, "status": {"conditions": [
                {"type": "Ready", "status": status, "lastHeartbeatTime": "2020-01-01T00:00:00Z"},
            ]}})
        };
        let now = SystemTime::now();
        let grace = Duration::from_secs(40);
        let info = |v: Value| {
            slipway_server::controller::NodeInfo::from_object(&to_prewarm(
                Kind::Node,
                &node_as_seen(v, now),
            ))
        };
        assert_eq!(info(node("True")).silent(now, grace, now), None);
        let why = info(node("Unknown")).silent(now, grace, now);
        assert_eq!(why.as_deref(), Some("node n1 is not ready"));
    }
}
