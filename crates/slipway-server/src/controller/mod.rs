//! The pre-warming controller, a task of `slipway serve`: once a second it expands
//! ImageListPullJobs into ImagePullJobs, spreads each ImagePullJob over its nodes' NodeImages,
//! releases tags no job asks for, expires finished jobs and writes their statuses. It reads and
//! writes only through [`Cluster`]: the server's store, a Kubernetes API server (crate
//! `slipway-prewarm-kube`) or, in tests, a fake.

mod expand;
mod expire;
mod release;
mod spread;
mod world;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use serde_json::{Value, json};
use slipway_model::kinds::kruise::ImagePullJobSpec;
use slipway_store::{Expect, PrewarmKey, PrewarmObject, PrewarmOutcome, SqliteStore, StoreError};

pub use world::{Config, Memory, NodeInfo};
use world::{NodeImageDoc, World};

/// The kind name under which [`Cluster::list`] gives the nodes (Kubernetes `v1` Nodes).
pub const NODE: &str = crate::nodes::NODE;

/// Why the controller could not read or write what it needs.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The server's store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another backend (a Kubernetes API server); `action` reads after "failed to".
    #[error("failed to {action}")]
    Backend {
        /// What was being done, e.g. `update the NodeImage n1`.
        action: String,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// What the controller reads and writes: the pre-warming objects and the nodes.
#[async_trait]
pub trait Cluster: Send + Sync {
    /// Objects of `kind` in every namespace.
    async fn list(&self, kind: &str) -> Result<Vec<PrewarmObject>, ClusterError>;
    /// One object.
    async fn get(&self, key: PrewarmKey<'_>) -> Result<Option<PrewarmObject>, ClusterError>;
    /// Creates or replaces an object, as [`SqliteStore::write_prewarm_object`] does.
    async fn write(
        &self,
        key: PrewarmKey<'_>,
        object: &Value,
        expect: Expect,
    ) -> Result<PrewarmOutcome, ClusterError>;
    /// Deletes an object (gone already is fine).
    async fn delete(&self, key: PrewarmKey<'_>) -> Result<(), ClusterError>;
}

#[async_trait]
impl Cluster for SqliteStore {
    async fn list(&self, kind: &str) -> Result<Vec<PrewarmObject>, ClusterError> {
        Ok(self.prewarm_objects(kind, None).await?)
    }
    async fn get(&self, key: PrewarmKey<'_>) -> Result<Option<PrewarmObject>, ClusterError> {
        Ok(self.prewarm_object(key).await?)
    }
    async fn write(
        &self,
        key: PrewarmKey<'_>,
        object: &Value,
        expect: Expect,
    ) -> Result<PrewarmOutcome, ClusterError> {
        Ok(self.write_prewarm_object(key, object, expect).await?)
    }
    async fn delete(&self, key: PrewarmKey<'_>) -> Result<(), ClusterError> {
        Ok(self.delete_prewarm_object(key, None).await.map(|_| ())?)
    }
}

/// Runs rounds until `shutdown`; a failed round is logged and the next one tries again.
pub async fn run(
    cluster: Arc<dyn Cluster>,
    config: Config,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut memory = Memory::default();
    let mut failing = false;
    loop {
        match round(cluster.as_ref(), &mut memory, &config, SystemTime::now()).await {
            Ok(()) => {
                if failing {
                    tracing::warn!("pre-warming controller: rounds run again");
                }
                failing = false;
            }
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(
                    "pre-warming controller: failed to run a round: {}",
                    chain(&e)
                );
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(config.interval) => {}
        }
    }
}

/// An error with its causes, as one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out = format!("{out}: {c}");
        cause = c.source();
    }
    out
}

fn key<'a>(kind: &'a str, o: &'a PrewarmObject) -> PrewarmKey<'a> {
    PrewarmKey {
        kind,
        namespace: &o.namespace,
        name: &o.name,
    }
}

/// One round at `now`.
pub async fn round(
    cluster: &dyn Cluster,
    memory: &mut Memory,
    config: &Config,
    now: SystemTime,
) -> Result<(), ClusterError> {
    memory.started.get_or_insert(now);
    let lists = cluster.list("ImageListPullJob").await?;
    let jobs = cluster.list("ImagePullJob").await?;
    for list in &lists {
        if expire::past_ttl(list, now) {
            cluster.delete(key("ImageListPullJob", list)).await?;
            continue;
        }
        expand_list(cluster, list, &jobs).await?;
    }
    let list_uids: HashSet<&str> = lists
        .iter()
        .filter(|l| !expire::past_ttl(l, now))
        .map(|l| l.uid.as_str())
        .collect();
    for job in &jobs {
        if expire::past_ttl(job, now) || expire::orphaned(job, &list_uids) {
            cluster.delete(key("ImagePullJob", job)).await?;
        }
    }
    let jobs = cluster.list("ImagePullJob").await?;
    let mut world = World {
        now,
        nodes: cluster
            .list(crate::nodes::NODE)
            .await?
            .iter()
            .map(NodeInfo::from_object)
            .collect(),
        images: cluster
            .list("NodeImage")
            .await?
            .into_iter()
            .map(|o| (o.name.clone(), NodeImageDoc::from_object(&o)))
            .collect(),
    };
    let mut claims = HashSet::new();
    let mut statuses = Vec::new();
    for o in &jobs {
        let Ok(spec) = serde_json::from_value::<ImagePullJobSpec>(o.object["spec"].clone()) else {
            continue;
        };
        let job = spread::Job {
            namespace: o.namespace.clone(),
            name: o.name.clone(),
            uid: o.uid.clone(),
            spec,
            status: serde_json::from_value(o.object["status"].clone()).unwrap_or_default(),
        };
        let s = spread::spread(&job, &mut world, memory, config);
        claims.extend(s.claims.into_iter().map(|n| (job.uid.clone(), n)));
        statuses.push((o, s.status));
    }
    let live: HashSet<&str> = jobs.iter().map(|j| j.uid.as_str()).collect();
    memory
        .retries
        .retain(|(uid, _), _| live.contains(uid.as_str()));
    release::release(&mut world, &claims, config.namespace.as_deref());
    for (node, doc) in world.images.iter().filter(|(_, d)| d.dirty) {
        write_spec(cluster, node, doc).await?;
    }
    for (o, status) in statuses {
        let value = serde_json::to_value(&status).unwrap_or(Value::Null);
        write_status(cluster, key("ImagePullJob", o), &value).await?;
    }
    Ok(())
}

/// Makes a list's jobs match its images, and writes its status.
async fn expand_list(
    cluster: &dyn Cluster,
    list: &PrewarmObject,
    jobs: &[PrewarmObject],
) -> Result<(), ClusterError> {
    let children = expand::children(list, jobs);
    for change in expand::expand(list, &children) {
        let (name, object, expect) = match change {
            expand::Change::Create(name, object) => (name, object, Expect::Absent),
            expand::Change::Respec(name, spec) => {
                let Some(old) = children.iter().find(|c| c.name == name) else {
                    continue;
                };
                let mut object = old.object.clone();
                object["spec"] = spec;
                (name, object, Expect::Version(old.resource_version))
            }
            expand::Change::Delete(name) => {
                let k = PrewarmKey {
                    kind: "ImagePullJob",
                    namespace: &list.namespace,
                    name: &name,
                };
                cluster.delete(k).await?;
                continue;
            }
        };
        let k = PrewarmKey {
            kind: "ImagePullJob",
            namespace: &list.namespace,
            name: &name,
        };
        // A job changed meanwhile is dealt with next round.
        cluster.write(k, &object, expect).await?;
    }
    let status = expand::status(list, &children);
    let value = serde_json::to_value(&status).unwrap_or(Value::Null);
    write_status(cluster, key("ImageListPullJob", list), &value).await
}

/// Writes an object's status when it changed, over whatever else changed meanwhile (the
/// controller alone writes these statuses).
async fn write_status(
    cluster: &dyn Cluster,
    key: PrewarmKey<'_>,
    status: &Value,
) -> Result<(), ClusterError> {
    for _ in 0..3 {
        let Some(current) = cluster.get(key).await? else {
            return Ok(());
        };
        if current.object.get("status") == Some(status) {
            return Ok(());
        }
        let mut object = current.object.clone();
        object["status"] = status.clone();
        match cluster
            .write(key, &object, Expect::Version(current.resource_version))
            .await?
        {
            PrewarmOutcome::Stale(_) => continue,
            _ => return Ok(()),
        }
    }
    Ok(())
}

/// Writes a NodeImage's spec over its current status (the agent writes only the status).
async fn write_spec(
    cluster: &dyn Cluster,
    node: &str,
    doc: &NodeImageDoc,
) -> Result<(), ClusterError> {
    let key = PrewarmKey {
        kind: "NodeImage",
        namespace: "",
        name: node,
    };
    let spec = serde_json::to_value(&doc.spec).unwrap_or(Value::Null);
    for _ in 0..3 {
        let (object, expect) = match cluster.get(key).await? {
            Some(current) => {
                let mut object = current.object.clone();
                object["spec"] = spec.clone();
                (object, Expect::Version(current.resource_version))
            }
            None => (
                json!({
                    "apiVersion": "apps.kruise.io/v1alpha1", "kind": "NodeImage",
                    "metadata": { "name": node }, "spec": spec,
                }),
                Expect::Absent,
            ),
        };
        match cluster.write(key, &object, expect).await? {
            PrewarmOutcome::Done(_) | PrewarmOutcome::Missing => return Ok(()),
            PrewarmOutcome::Stale(_) | PrewarmOutcome::Exists => continue,
        }
    }
    Ok(())
}

/// An in-memory [`Cluster`] for the controller's tests.
#[cfg(test)]
mod fake;
