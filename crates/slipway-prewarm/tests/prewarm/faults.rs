//! Progress, cancellation and a runtime that goes away mid-pull (node 3, with the big image).

use std::time::Duration;

use containerd_client::services::v1::ListStatusesRequest;
use containerd_client::services::v1::content_client::ContentClient;
use slipway_prewarm::{Phase, TagSpec};

use crate::harness::{Node, env, fast_config, restart_stopped_nodes, start, succeeded};

fn big_image() -> String {
    env()["SLIPWAY_CONTAINERD_BIG_IMAGE"].clone()
}

#[tokio::test]
async fn progress_climbs_in_bytes_while_the_pull_runs() {
    let node = Node::take(3);
    let image = big_image();
    node.forget(&[&image]).await;
    let mut engine = start(&node, fast_config(2), vec![TagSpec::new(&image)]).await;
    let last = engine.finish(&[&image], Duration::from_secs(180)).await[&image].clone();
    succeeded(&last);
    let seen: Vec<_> = engine
        .of(&image)
        .iter()
        .filter_map(|s| s.progress)
        .collect();
    let total = seen.last().expect("progress reported").total;
    // Three layers of 40 MiB of random bytes each, gzipped as the registry serves them.
    assert!(total > 100 << 20, "total {total}");
    assert!(
        seen.iter()
            .all(|p| p.total == total && p.completed <= total)
    );
    assert!(
        seen.windows(2).all(|w| w[0].completed <= w[1].completed),
        "{seen:?}"
    );
    let intermediate = seen
        .iter()
        .filter(|p| p.completed > 0 && p.completed < total)
        .count();
    assert!(intermediate >= 1, "{seen:?}");
    assert_eq!(last.progress.map(|p| p.completed), Some(total));
}

/// Offsets of the ingests containerd has open in the CRI namespace.
async fn ingest_offsets(node: &Node) -> Vec<(String, i64)> {
    let channel = node.cri().await.channel();
    let mut request = tonic::Request::new(ListStatusesRequest::default());
    request
        .metadata_mut()
        .insert("containerd-namespace", "k8s.io".parse().expect("ascii"));
    let mut statuses: Vec<_> = ContentClient::new(channel)
        .list_statuses(request)
        .await
        .expect("list statuses")
        .into_inner()
        .statuses
        .into_iter()
        .map(|s| (s.r#ref, s.offset))
        .collect();
    statuses.sort();
    statuses
}

#[tokio::test]
async fn a_removed_tag_stops_its_pull_in_the_runtime() {
    let node = Node::take(3);
    let image = big_image();
    node.forget(&[&image]).await;
    let mut engine = start(&node, fast_config(2), vec![TagSpec::new(&image)]).await;
    engine
        .until(Duration::from_secs(60), |s| {
            s.progress
                .is_some_and(|p| p.completed > 0 && p.completed < p.total)
        })
        .await;
    engine.desired.send_replace(Vec::new());
    // The call is dropped, so containerd cancels the fetch: its ingests stop growing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = ingest_offsets(&node).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = ingest_offsets(&node).await;
    // containerd may drop the abandoned ingests meanwhile; none may have grown or begun.
    let grown: Vec<_> = after
        .iter()
        .filter(|(r, offset)| !before.iter().any(|(b, was)| b == r && was >= offset))
        .collect();
    assert!(
        grown.is_empty(),
        "still pulling: {grown:?} (before: {before:?})"
    );
    assert!(!node.ctr_images().contains(&image));
    // No status of the removed tag reads final.
    assert!(engine.of(&image).iter().all(|s| !s.phase.is_final()));
    // Closing the input stops the engine itself.
    drop(engine.desired);
    tokio::time::timeout(Duration::from_secs(5), engine.task)
        .await
        .expect("engine stops")
        .expect("no panic");
}

#[tokio::test]
async fn a_runtime_stopped_mid_pull_and_restarted_is_retried_to_success() {
    let node = Node::take(3);
    let image = big_image();
    node.forget(&[&image]).await;
    let spec = TagSpec {
        backoff_limit: 6,
        ..TagSpec::new(&image)
    };
    let mut engine = start(&node, fast_config(2), vec![spec]).await;
    engine
        .until(Duration::from_secs(60), |s| {
            s.progress
                .is_some_and(|p| p.completed > 0 && p.completed < p.total)
        })
        .await;
    nix_kill(node.pid());
    let failed_attempt = engine
        .until(Duration::from_secs(30), |s| {
            s.phase == Phase::Waiting && s.attempts >= 1 && s.message.is_some()
        })
        .await;
    restart_stopped_nodes();
    let last = engine.finish(&[&image], Duration::from_secs(180)).await[&image].clone();
    succeeded(&last);
    assert!(last.attempts >= 2, "{last:#?}");
    assert!(node.ctr_images().lines().any(|l| l == image));
    eprintln!("the failed attempt said: {:?}", failed_attempt.message);
}

fn nix_kill(pid: i32) {
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}
