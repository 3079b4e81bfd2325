//! Watch-backed copies of the objects pre-warming reads (a reflector of our own): one watch per
//! kind keeps a shelf of objects current, so a round reads memory instead of listing. Writes
//! made through this process are put on the shelf at once (read-your-writes), and older watch
//! events never undo them: objects are ordered by their `resourceVersion`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::StreamExt as _;
use kube::Api;
use kube::api::DynamicObject;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::kind::{Kind, to_value, version_number};

type Key = (String, String);

/// One kind's objects.
#[derive(Debug, Default)]
struct Shelf {
    objects: BTreeMap<Key, Value>,
    /// Deleted through this process, by their last version: older events for them are stale.
    gone: HashMap<Key, i64>,
    /// A relist under way.
    staging: Option<BTreeMap<Key, Value>>,
    synced: bool,
    /// Why the watch fails, while it does.
    failing: Option<Failure>,
}

/// Why a watch fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// In a line.
    pub why: String,
    /// The API server refused for good (no such resource, or not allowed) rather than being
    /// out of reach.
    pub refused: bool,
}

/// The shelves of the kinds watched.
#[derive(Debug)]
pub struct Cache {
    shelves: HashMap<Kind, Mutex<Shelf>>,
    changed: Notify,
}

fn key_of(v: &Value) -> Key {
    let m = &v["metadata"];
    let s = |k: &str| m[k].as_str().unwrap_or_default().to_string();
    (s("namespace"), s("name"))
}

/// A shelf's lock; one poisoned by a panic elsewhere still holds consistent maps.
fn lock(m: &Mutex<Shelf>) -> MutexGuard<'_, Shelf> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Cache {
    /// Starts one watch per `(kind, api, config)`, until `shutdown`.
    pub fn start(
        watches: Vec<(Kind, Api<DynamicObject>, watcher::Config)>,
        shutdown: CancellationToken,
    ) -> Arc<Cache> {
        let cache = Arc::new(Cache {
            shelves: watches
                .iter()
                .map(|(k, _, _)| (*k, Mutex::new(Shelf::default())))
                .collect(),
            changed: Notify::new(),
        });
        for (kind, api, config) in watches {
            tokio::spawn(feed(cache.clone(), kind, api, config, shutdown.clone()));
        }
        cache
    }

    fn shelf(&self, kind: Kind) -> Option<MutexGuard<'_, Shelf>> {
        self.shelves.get(&kind).map(lock)
    }

    /// Every object of `kind`.
    pub fn list(&self, kind: Kind) -> Vec<Value> {
        self.shelf(kind)
            .map(|s| s.objects.values().cloned().collect())
            .unwrap_or_default()
    }

    /// One object.
    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<Value> {
        let shelf = self.shelf(kind)?;
        shelf
            .objects
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Puts an object this process wrote (as the server answered) on its shelf.
    pub fn remember(&self, kind: Kind, object: Value) {
        if let Some(mut s) = self.shelf(kind) {
            apply(&mut s, object);
        }
        self.changed.notify_one();
    }

    /// Takes an object this process deleted off its shelf.
    pub fn forget(&self, kind: Kind, namespace: &str, name: &str) {
        if let Some(mut s) = self.shelf(kind) {
            let key = (namespace.to_string(), name.to_string());
            if let Some(old) = s.objects.remove(&key) {
                s.gone.insert(key, version_number(&old));
            }
        }
    }

    /// Whether every watch has listed its objects once.
    pub fn synced(&self) -> bool {
        self.shelves.values().all(|s| lock(s).synced)
    }

    /// The watches that have not listed yet, each with why, when it failed.
    pub fn unsynced(&self) -> Vec<(Kind, Option<Failure>)> {
        Kind::ALL
            .into_iter()
            .filter_map(|k| {
                let s = self.shelf(k)?;
                (!s.synced).then(|| (k, s.failing.clone()))
            })
            .collect()
    }

    /// Resolves after the next change of any shelf.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    fn event(&self, kind: Kind, event: Event<DynamicObject>) {
        let Some(mut s) = self.shelf(kind) else {
            return;
        };
        // The watcher says `Init` before every relist, failed ones too: only an answer clears.
        if !matches!(event, Event::Init) {
            s.failing = None;
        }
        match event {
            Event::Apply(o) => apply(&mut s, to_value(kind, &o)),
            Event::Delete(o) => {
                let v = to_value(kind, &o);
                let key = key_of(&v);
                let at = version_number(&v);
                if s.objects
                    .get(&key)
                    .is_none_or(|old| version_number(old) <= at)
                {
                    s.objects.remove(&key);
                }
                s.gone.remove(&key);
            }
            Event::Init => s.staging = Some(BTreeMap::new()),
            Event::InitApply(o) => {
                let v = to_value(kind, &o);
                s.staging.get_or_insert_default().insert(key_of(&v), v);
            }
            Event::InitDone => {
                s.objects = s.staging.take().unwrap_or_default();
                s.gone.clear();
                s.synced = true;
            }
        }
        drop(s);
        self.changed.notify_one();
    }

    fn failed(&self, kind: Kind, why: Failure) -> bool {
        let Some(mut s) = self.shelf(kind) else {
            return false;
        };
        let first = s.failing.is_none();
        s.failing = Some(why);
        first
    }
}

/// Puts `object` on the shelf unless the shelf has it at a later version, or deleted it.
fn apply(s: &mut Shelf, object: Value) {
    let key = key_of(&object);
    let at = version_number(&object);
    if s.gone.get(&key).is_some_and(|gone| *gone >= at) {
        return;
    }
    if s.objects
        .get(&key)
        .is_some_and(|old| version_number(old) > at)
    {
        return;
    }
    s.gone.remove(&key);
    s.objects.insert(key, object);
}

/// Runs one watch into its shelf; errors are retried with kube's backoff and said once.
async fn feed(
    cache: Arc<Cache>,
    kind: Kind,
    api: Api<DynamicObject>,
    config: watcher::Config,
    shutdown: CancellationToken,
) {
    let stream = watcher::watcher(api, config).default_backoff();
    futures::pin_mut!(stream);
    loop {
        let next = tokio::select! {
            () = shutdown.cancelled() => return,
            next = stream.next() => next,
        };
        match next {
            None => return,
            Some(Ok(event)) => cache.event(kind, event),
            Some(Err(e)) => {
                let why = watch_error(&e);
                let line = why.why.clone();
                if cache.failed(kind, why) {
                    tracing::warn!("failed to watch {}: {line}", kind.resource().plural);
                }
            }
        }
    }
}

/// A watcher error in a line (kube's own messages carry debug dumps).
fn watch_error(e: &watcher::Error) -> Failure {
    let said = |s: &kube::core::Status| Failure {
        why: format!(
            "the API server answered {} {}: {}",
            s.code, s.reason, s.message
        ),
        refused: matches!(s.code, 401 | 403 | 404),
    };
    let other = |e: &dyn std::error::Error| {
        let mut why = e.to_string();
        let mut cause = e.source();
        while let Some(c) = cause {
            let text = c.to_string();
            if !why.contains(&text) {
                why = format!("{why}: {text}");
            }
            cause = c.source();
        }
        Failure {
            why,
            refused: false,
        }
    };
    match e {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => match e {
            kube::Error::Api(s) => said(s),
            e => other(e),
        },
        watcher::Error::WatchError(s) => said(s),
        e => other(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(name: &str, rv: &str, spec: i64) -> Value {
        json!({"metadata": {"name": name, "resourceVersion": rv}, "spec": {"n": spec}})
    }

    #[test]
    fn older_versions_never_replace_newer_ones_and_deletions_stick() {
        let mut s = Shelf::default();
        apply(&mut s, obj("a", "5", 1));
        apply(&mut s, obj("a", "4", 0));
        assert_eq!(s.objects[&(String::new(), "a".into())]["spec"]["n"], 1);
        s.gone.insert((String::new(), "a".into()), 5);
        s.objects.clear();
        apply(&mut s, obj("a", "5", 1));
        assert!(
            s.objects.is_empty(),
            "an event from before the delete is stale"
        );
        apply(&mut s, obj("a", "9", 2));
        assert_eq!(s.objects[&(String::new(), "a".into())]["spec"]["n"], 2);
    }
}
