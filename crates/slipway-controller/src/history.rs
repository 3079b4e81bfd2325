//! The history a server keeps of the controller's runs (`slipway serve --controller`): the
//! engine's events, as the cluster gets them, also go to the server's store, each top-level
//! run marked with the API server it runs in so the server sends cancels there.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use slipway_engine::{RunEvent, Store};
use slipway_model::annotations::CLUSTER_RUN;

/// A store recording the controller's runs, marking each top-level run as the cluster's.
#[derive(Clone)]
pub(crate) struct History {
    store: Arc<dyn Store>,
    server: String,
}

impl History {
    /// Records into `store` the runs of the cluster at `server`.
    pub(crate) fn new(store: Arc<dyn Store>, server: &str) -> Self {
        History {
            store,
            server: server.to_string(),
        }
    }
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// `object` with the annotation naming the cluster it runs in.
fn marked(object: &Value, server: &str) -> Value {
    let mut object = object.clone();
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(a) = annotations.as_object_mut() {
            a.insert(CLUSTER_RUN.into(), Value::String(server.to_string()));
        }
    }
    object
}

#[async_trait]
impl Store for History {
    fn record(&self, event: &RunEvent) {
        match event {
            RunEvent::RunStarted { run, object } if run.parent_uid.is_none() => {
                self.store.record(&RunEvent::RunStarted {
                    run: run.clone(),
                    object: marked(object, &self.server),
                });
            }
            _ => self.store.record(event),
        }
    }

    async fn record_log(&self, event: RunEvent) {
        self.store.record_log(event).await;
    }

    async fn flush(&self) {
        self.store.flush().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_run_is_marked_with_its_cluster_and_keeps_its_annotations() {
        let o = marked(
            &json!({"metadata": {"name": "pr", "annotations": {"a": "b"}}}),
            "https://k8s:6443/",
        );
        assert_eq!(o["metadata"]["annotations"]["a"], "b");
        assert_eq!(
            o["metadata"]["annotations"][CLUSTER_RUN],
            "https://k8s:6443/"
        );
        let bare = marked(&json!({"metadata": {"name": "pr"}}), "s");
        assert_eq!(bare["metadata"]["annotations"][CLUSTER_RUN], "s");
    }
}
