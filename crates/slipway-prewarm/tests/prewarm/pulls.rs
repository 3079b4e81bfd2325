//! Pulls that go as they should, and pulls the registry refuses.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use slipway_prewarm::{
    CriImages, Engine, ImageInfo, ImageRuntime, NoProgress, Phase, PullPolicy, RegistryAuth,
    RuntimeError, TagSpec,
};
use tokio::sync::{mpsc, watch};

use crate::harness::{Node, REGISTRY, env, fast_config, start, succeeded};

#[tokio::test]
async fn pulls_an_image_that_ctr_then_lists() {
    let node = Node::take(1);
    let image = format!("{REGISTRY}/library/busybox:latest");
    node.forget(&[&image]).await;
    assert!(!node.ctr_images().contains(&image));

    let mut engine = start(&node, fast_config(2), vec![TagSpec::new(&image)]).await;
    let last = engine.finish(&[&image], Duration::from_secs(60)).await;
    succeeded(&last[&image]);
    let phases: Vec<Phase> = engine.of(&image).iter().map(|s| s.phase).collect();
    assert_eq!(phases.first(), Some(&Phase::Waiting));
    assert!(phases.contains(&Phase::Pulling), "{phases:?}");
    assert!(
        node.ctr_images().lines().any(|l| l == image),
        "{}",
        node.ctr_images()
    );
    let status = &last[&image];
    assert!(status.start_time <= status.completion_time);
    assert_eq!(status.attempts, 1);
}

/// Counts pulls, passing every call to the real runtime.
struct CountingPulls {
    inner: CriImages,
    pulls: AtomicU32,
}

#[async_trait::async_trait]
impl ImageRuntime for CountingPulls {
    async fn pull(
        &self,
        image: &str,
        auth: Option<&RegistryAuth>,
        timeout: Duration,
    ) -> Result<String, RuntimeError> {
        self.pulls.fetch_add(1, Ordering::SeqCst);
        self.inner.pull(image, auth, timeout).await
    }
    async fn status(&self, image: &str) -> Result<Option<ImageInfo>, RuntimeError> {
        self.inner.status(image).await
    }
    async fn list(&self) -> Result<Vec<ImageInfo>, RuntimeError> {
        self.inner.list().await
    }
    async fn remove(&self, image: &str) -> Result<(), RuntimeError> {
        self.inner.remove(image).await
    }
}

#[tokio::test]
async fn if_not_present_does_not_pull_an_image_the_node_has() {
    let node = Node::take(2);
    let image = format!("{REGISTRY}/library/alpine:latest");
    node.forget(&[&image]).await;
    let runtime = Arc::new(CountingPulls {
        inner: node.cri().await,
        pulls: AtomicU32::new(0),
    });
    let mut ids = Vec::new();
    // Absent: pulled. Present: IfNotPresent looks it up only; Always pulls again.
    for (policy, pulls_after) in [
        (PullPolicy::IfNotPresent, 1),
        (PullPolicy::IfNotPresent, 1),
        (PullPolicy::Always, 2),
    ] {
        let engine = Engine::new(runtime.clone(), Arc::new(NoProgress), fast_config(2));
        let spec = TagSpec {
            policy,
            ..TagSpec::new(&image)
        };
        let (_desired, rx) = watch::channel(vec![spec]);
        let (tx, mut statuses) = mpsc::unbounded_channel();
        let task = tokio::spawn(engine.run(rx, tx));
        let last = loop {
            let s = statuses.recv().await.expect("status");
            if s.phase.is_final() {
                break s;
            }
        };
        task.abort();
        succeeded(&last);
        ids.push(last.image_id.clone());
        assert_eq!(
            runtime.pulls.load(Ordering::SeqCst),
            pulls_after,
            "{policy:?}"
        );
    }
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
}

fn private_image() -> (String, String, String) {
    let env = env();
    (
        format!("{}/private/busybox:1", env["SLIPWAY_TEST_AUTH_REGISTRY"]),
        env["SLIPWAY_TEST_AUTH_USER"].clone(),
        env["SLIPWAY_TEST_AUTH_PASSWORD"].clone(),
    )
}

#[tokio::test]
async fn a_pull_secret_opens_the_private_registry_and_a_wrong_one_is_refused() {
    let node = Node::take(2);
    let (image, user, password) = private_image();
    let registry = &env()["SLIPWAY_TEST_AUTH_REGISTRY"];
    node.forget(&[&image]).await;
    let config = format!(
        r#"{{"auths":{{"{registry}":{{"auth":"{}"}}}}}}"#,
        base64_encode(&format!("{user}:{password}"))
    );
    let auth = RegistryAuth::from_docker_config(config.as_bytes(), registry)
        .expect("valid")
        .expect("an entry for the registry");

    let wrong_password = "wrong-horse-battery";
    let wrong = RegistryAuth::basic(registry, &user, wrong_password);
    let mut engine = start(
        &node,
        fast_config(2),
        vec![TagSpec {
            auth: Some(wrong),
            backoff_limit: 0,
            ..TagSpec::new(&image)
        }],
    )
    .await;
    let refused = engine.finish(&[&image], Duration::from_secs(60)).await[&image].clone();
    assert_eq!(refused.phase, Phase::Failed, "{refused:#?}");
    let message = refused.message.clone().expect("the registry's words");
    assert!(message.contains("401 Unauthorized"), "{message}");
    assert!(!message.contains(wrong_password), "{message}");
    assert!(!node.ctr_images().contains(&image));

    engine.desired.send_replace(vec![TagSpec {
        auth: Some(auth),
        ..TagSpec::new(&image)
    }]);
    let last = engine.finish(&[&image], Duration::from_secs(60)).await;
    succeeded(&last[&image]);
    assert!(node.ctr_images().lines().any(|l| l == image));
}

fn base64_encode(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn a_missing_image_fails_with_the_runtimes_words_after_its_retries() {
    let node = Node::take(1);
    let image = format!("{REGISTRY}/library/no-such-image:latest");
    let spec = TagSpec {
        backoff_limit: 1,
        ..TagSpec::new(&image)
    };
    let mut engine = start(&node, fast_config(2), vec![spec]).await;
    let last = engine.finish(&[&image], Duration::from_secs(60)).await[&image].clone();
    assert_eq!(last.phase, Phase::Failed, "{last:#?}");
    assert_eq!(last.attempts, 2);
    let message = last.message.expect("message");
    assert!(message.contains("not found"), "{message}");
    // Between the attempts it waited, saying why.
    let waiting_after_failure = engine
        .of(&image)
        .iter()
        .any(|s| s.phase == Phase::Waiting && s.attempts == 1 && s.message.is_some());
    assert!(waiting_after_failure, "{:#?}", engine.history);
}

#[tokio::test]
async fn a_malformed_reference_fails_without_an_attempt() {
    let node = Node::take(1);
    let mut engine = start(&node, fast_config(2), vec![TagSpec::new("Bad Ref")]).await;
    let last = engine.finish(&["Bad Ref"], Duration::from_secs(10)).await["Bad Ref"].clone();
    assert_eq!(last.phase, Phase::Failed);
    assert_eq!(last.attempts, 0);
    assert_eq!(
        last.message.as_deref(),
        Some("`Bad Ref` is not an image reference: it contains whitespace")
    );
}

#[tokio::test]
async fn never_more_pulls_at_once_than_the_limit() {
    let node = Node::take(1);
    let big = env()["SLIPWAY_CONTAINERD_BIG_IMAGE"].clone();
    let images: Vec<String> = ["busybox", "ubuntu", "bash"]
        .iter()
        .map(|n| format!("{REGISTRY}/library/{n}:latest"))
        .chain([big])
        .collect();
    let names: Vec<&str> = images.iter().map(String::as_str).collect();
    node.forget(&names).await;
    let specs = images.iter().map(TagSpec::new).collect();
    let mut engine = start(&node, fast_config(2), specs).await;
    let last = engine.finish(&names, Duration::from_secs(180)).await;
    for image in &names {
        succeeded(&last[*image]);
    }
    // From each tag's recorded start and end: at no start were two others still running.
    let spans: Vec<_> = last
        .values()
        .map(|s| {
            (
                s.start_time.expect("start"),
                s.completion_time.expect("end"),
            )
        })
        .collect();
    for (start, _) in &spans {
        let running = spans
            .iter()
            .filter(|(s, e)| s <= start && start < e)
            .count();
        assert!(running <= 2, "{running} pulls at once: {spans:#?}");
    }
    // And the queue was visible: some tag read Waiting while two others were Pulling.
    let queued = names
        .iter()
        .filter(|i| {
            engine
                .of(i)
                .first()
                .is_some_and(|s| s.phase == Phase::Waiting)
        })
        .count();
    assert_eq!(queued, 4);
    let most_pulling_at_once = max_pulling(&engine.history);
    assert_eq!(most_pulling_at_once, 2, "{:#?}", engine.history);
}

/// The largest number of tags reading `Pulling` at once along the history.
fn max_pulling(history: &[slipway_prewarm::TagStatus]) -> usize {
    let mut phase = std::collections::HashMap::new();
    let mut most = 0;
    for s in history {
        phase.insert(s.image.clone(), s.phase);
        most = most.max(phase.values().filter(|p| **p == Phase::Pulling).count());
    }
    most
}
