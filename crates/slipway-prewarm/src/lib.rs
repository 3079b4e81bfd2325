//! Image pre-warming on a node: an engine that pulls the images a node should have through the
//! runtime's CRI `ImageService`, with a per-node limit on concurrent pulls, `imagePullPolicy`,
//! a timeout per attempt, retries with backoff, and progress in bytes read from containerd's
//! content store. Inputs and outputs are channels, so that a CLI, a server's NodeImage or a
//! Kubernetes watch can drive it alike.

pub mod agent;
pub mod auth;
pub mod content;
pub mod endpoint;
pub mod engine;
pub mod follow;
pub mod node_image;
pub mod plane;
pub mod runtime;
pub mod server;
pub mod status;

pub use auth::RegistryAuth;
pub use content::{ContainerdContent, NoProgress, ProgressProbe};
pub use endpoint::{Endpoint, EndpointError};
pub use engine::{Engine, EngineConfig};
pub use plane::ControlPlane;
pub use runtime::{CriImages, ImageInfo, ImageRuntime, RuntimeError};
pub use status::{Phase, Progress, PullPolicy, TagSpec, TagStatus};
