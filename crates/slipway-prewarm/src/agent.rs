//! A node agent's adapters around the engine. An input adapter owns the `watch` sender of
//! desired tags; an output adapter drains the statuses. Here: a fixed list in (what the CLI
//! asks for), a callback out; a server's NodeImage or a Kubernetes watch are other inputs.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use crate::content::{ContainerdContent, ProgressProbe};
use crate::endpoint::{Endpoint, EndpointError};
use crate::engine::{Engine, EngineConfig};
use crate::runtime::{CriImages, ImageRuntime};
use crate::status::{TagSpec, TagStatus};

/// Connects to a runtime's socket and makes an engine for it, with progress from its content
/// store (containerd's; a runtime without one answers nothing and progress stays unknown).
pub async fn engine_for(
    endpoint: &Endpoint,
    config: EngineConfig,
) -> Result<Engine, EndpointError> {
    let cri = CriImages::connect(endpoint).await?;
    // A socket that answers but is no CRI runtime (or has its CRI plugin off) is told at start.
    cri.list().await.map_err(|source| EndpointError::NotCri {
        path: endpoint.path().to_path_buf(),
        source,
    })?;
    let probe: Arc<dyn ProgressProbe> = Arc::new(ContainerdContent::new(cri.channel()));
    let runtime: Arc<dyn ImageRuntime> = Arc::new(cri);
    Ok(Engine::new(runtime, probe, config))
}

/// Pulls `specs` once: reports every status to `report` and returns the final status of each
/// tag when all are final. The engine (and every pull) has stopped when this returns.
pub async fn pull_list(
    engine: Engine,
    specs: Vec<TagSpec>,
    mut report: impl FnMut(&TagStatus),
) -> Vec<TagStatus> {
    let mut order: Vec<String> = Vec::new();
    for spec in &specs {
        if !order.contains(&spec.image) {
            order.push(spec.image.clone());
        }
    }
    let (desired, desired_rx) = watch::channel(specs);
    let (tx, mut statuses) = mpsc::unbounded_channel();
    let running = tokio::spawn(engine.run(desired_rx, tx));
    let mut last: HashMap<String, TagStatus> = HashMap::new();
    while !order
        .iter()
        .all(|i| last.get(i).is_some_and(|s| s.phase.is_final()))
    {
        let Some(status) = statuses.recv().await else {
            break;
        };
        report(&status);
        last.insert(status.image.clone(), status);
    }
    drop(desired);
    // The engine returns once its input closes; a panic in it leaves the statuses it sent.
    let _ = running.await;
    order
        .iter()
        .map(|i| last.remove(i).unwrap_or_else(|| TagStatus::waiting(i)))
        .collect()
}
