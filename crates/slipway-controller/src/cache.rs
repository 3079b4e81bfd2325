//! Watch caches of the Tekton objects runs refer to by name (Tasks, Pipelines, StepActions), so
//! a run that names one costs no list request: kube-runtime's reflector keeps each kind, over
//! the namespaces the controller watches. ConfigMaps and Secrets are not cached (a controller
//! holding every Secret of the cluster in memory is a risk of its own); they are still listed
//! for the runs that may need them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt as _;
use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;
use kube::runtime::{WatchStreamExt as _, reflector, watcher};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::resources::tekton;

/// One kind's cache and whether its first list is in.
struct Kind {
    ar: ApiResource,
    store: reflector::Store<DynamicObject>,
    ready: Arc<AtomicBool>,
}

/// The caches of Tasks, Pipelines and StepActions.
pub(crate) struct TektonCache {
    kinds: Vec<Kind>,
}

impl std::fmt::Debug for TektonCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TektonCache").finish_non_exhaustive()
    }
}

/// The kinds cached, as `namespace_library` reads them.
pub(crate) fn kinds() -> [ApiResource; 3] {
    [
        tekton("v1", "Task", "tasks"),
        tekton("v1", "Pipeline", "pipelines"),
        tekton("v1beta1", "StepAction", "stepactions"),
    ]
}

impl TektonCache {
    /// Starts watching each kind in `namespace` (every namespace for `None`) until `stop`.
    pub(crate) fn start(
        client: &kube::Client,
        namespace: Option<&str>,
        stop: &CancellationToken,
    ) -> Self {
        let kinds = kinds()
            .into_iter()
            .map(|ar| {
                let api: Api<DynamicObject> = match namespace {
                    Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
                    None => Api::all_with(client.clone(), &ar),
                };
                let writer = reflector::store::Writer::new(ar.clone());
                let store = writer.as_reader();
                let stream = reflector(
                    writer,
                    watcher(api, watcher::Config::default().any_semantic()),
                )
                .default_backoff()
                .applied_objects();
                let stop = stop.clone();
                tokio::spawn(async move {
                    let mut stream = std::pin::pin!(stream);
                    loop {
                        tokio::select! {
                            () = stop.cancelled() => return,
                            next = stream.next() => if next.is_none() { return },
                        }
                    }
                });
                let ready = Arc::new(AtomicBool::new(false));
                let (flag, reader) = (ready.clone(), store.clone());
                tokio::spawn(async move {
                    if reader.wait_until_ready().await.is_ok() {
                        flag.store(true, Ordering::Release);
                    }
                });
                Kind { ar, store, ready }
            })
            .collect();
        TektonCache { kinds }
    }

    /// The objects of `kind` in `namespace` as JSON, once that kind's cache is filled; `None`
    /// before (or for a kind the cluster does not serve), which means a list.
    pub(crate) fn objects(&self, kind: &str, namespace: &str) -> Option<Vec<Value>> {
        let k = self.kinds.iter().find(|k| k.ar.kind == kind)?;
        if !k.ready.load(Ordering::Acquire) {
            return None;
        }
        let objects = k
            .store
            .state()
            .into_iter()
            .filter(|o| o.metadata.namespace.as_deref() == Some(namespace))
            .filter_map(|o| serde_json::to_value(o.as_ref()).ok())
            .map(|mut v| {
                // Read through this version, as a list through the API would say.
                v["apiVersion"] = Value::String(k.ar.api_version.clone());
                v
            })
            .collect();
        Some(objects)
    }
}
