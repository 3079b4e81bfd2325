//! The CRI `ImageService` of a runtime (runtime.v1, else v1alpha2), behind a trait the engine
//! pulls through.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_cri::{v1, v1alpha2};
use tonic::transport::Channel;

use crate::auth::RegistryAuth;
use crate::endpoint::{Endpoint, EndpointError};

/// An image the runtime has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// The image id (`sha256:…` of its config).
    pub id: String,
    /// Names it is known by.
    pub repo_tags: Vec<String>,
    /// `name@sha256:…` of its manifest.
    pub repo_digests: Vec<String>,
    /// Bytes on disk as the runtime counts them.
    pub size: u64,
}

/// Which ImageService call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// PullImage.
    Pull,
    /// ImageStatus.
    Status,
    /// ListImages.
    List,
    /// RemoveImage.
    Remove,
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Call::Pull => "pull",
            Call::Status => "look up",
            Call::List => "list images",
            Call::Remove => "remove",
        })
    }
}

/// A call the runtime refused or could not answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("failed to {call}{}: {message}", if image.is_empty() { String::new() } else { format!(" {image}") })]
pub struct RuntimeError {
    /// The call.
    pub call: Call,
    /// The image it was about (empty for List).
    pub image: String,
    /// The gRPC status code.
    pub code: tonic::Code,
    /// The runtime's own words (credentials scrubbed).
    pub message: String,
}

impl RuntimeError {
    fn new(call: Call, image: &str, status: &tonic::Status, auth: Option<&RegistryAuth>) -> Self {
        let mut message = status.message().to_string();
        if message.is_empty() {
            message = format!("{:?}", status.code());
        }
        // A broken connection reads "transport error"; its causes say what broke.
        let mut cause = std::error::Error::source(status);
        while let Some(c) = cause {
            let text = c.to_string();
            if !message.contains(&text) {
                message = format!("{message}: {text}");
            }
            cause = c.source();
        }
        if let Some(auth) = auth {
            message = auth.scrub(&message);
        }
        RuntimeError {
            call,
            image: image.to_string(),
            code: status.code(),
            message,
        }
    }
}

/// What the engine needs from a runtime's image service.
#[async_trait::async_trait]
pub trait ImageRuntime: Send + Sync {
    /// Pulls `image`; the runtime gives up after `timeout` too. Returns the image reference
    /// the runtime stored (its id).
    async fn pull(
        &self,
        image: &str,
        auth: Option<&RegistryAuth>,
        timeout: Duration,
    ) -> Result<String, RuntimeError>;
    /// The image, if the runtime has it.
    async fn status(&self, image: &str) -> Result<Option<ImageInfo>, RuntimeError>;
    /// Every image the runtime has.
    async fn list(&self) -> Result<Vec<ImageInfo>, RuntimeError>;
    /// Removes the image (nothing if the runtime does not have it).
    async fn remove(&self, image: &str) -> Result<(), RuntimeError>;
}

/// A CRI runtime over its unix socket.
#[derive(Debug, Clone)]
pub struct CriImages {
    channel: Channel,
    endpoint: Endpoint,
    /// Set once the runtime answered `Unimplemented` for runtime.v1 (containerd before 1.7
    /// speaks both; older runtimes only v1alpha2).
    alpha: std::sync::Arc<AtomicBool>,
}

/// Runs a call on runtime.v1, and again on v1alpha2 when v1 is not implemented.
macro_rules! either_version {
    ($self:ident, $v1:expr, $alpha:expr) => {{
        let mut result = None;
        if !$self.alpha.load(Ordering::Relaxed) {
            match $v1.await {
                Err(s) if s.code() == tonic::Code::Unimplemented => {
                    tracing::info!(endpoint = %$self.endpoint, "runtime.v1 unimplemented; using v1alpha2");
                    $self.alpha.store(true, Ordering::Relaxed);
                }
                other => result = Some(other),
            }
        }
        match result {
            Some(r) => r,
            None => $alpha.await,
        }
    }};
}

impl CriImages {
    /// Connects to the runtime's socket.
    pub async fn connect(endpoint: &Endpoint) -> Result<Self, EndpointError> {
        Ok(CriImages {
            channel: endpoint.connect().await?,
            endpoint: endpoint.clone(),
            alpha: Default::default(),
        })
    }

    /// The channel, for other services on the same socket (containerd's content store).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// Whether the runtime is spoken to in v1alpha2.
    pub fn speaks_v1alpha2(&self) -> bool {
        self.alpha.load(Ordering::Relaxed)
    }

    fn v1(&self) -> v1::image_service_client::ImageServiceClient<Channel> {
        v1::image_service_client::ImageServiceClient::new(self.channel.clone())
    }

    fn v1alpha2(&self) -> v1alpha2::image_service_client::ImageServiceClient<Channel> {
        v1alpha2::image_service_client::ImageServiceClient::new(self.channel.clone())
    }
}

fn spec_v1(image: &str) -> Option<v1::ImageSpec> {
    Some(v1::ImageSpec {
        image: image.to_string(),
        ..Default::default()
    })
}

fn spec_alpha(image: &str) -> Option<v1alpha2::ImageSpec> {
    Some(v1alpha2::ImageSpec {
        image: image.to_string(),
        ..Default::default()
    })
}

/// The registry as a URL: containerd matches `server_address` by parsing it as one and
/// comparing its host (a bare `host:port` fails to parse, a bare `host` has no host), so the
/// scheme is there for the parse only.
fn server_url(host: &str) -> String {
    if host.contains("://") {
        host.to_string()
    } else {
        format!("https://{host}")
    }
}

fn with_timeout<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    // Sent as grpc-timeout: the runtime cancels its own pull at the deadline.
    request.set_timeout(timeout);
    request
}

macro_rules! info_from {
    ($image:expr) => {
        ImageInfo {
            id: $image.id,
            repo_tags: $image.repo_tags,
            repo_digests: $image.repo_digests,
            size: $image.size,
        }
    };
}

#[async_trait::async_trait]
impl ImageRuntime for CriImages {
    async fn pull(
        &self,
        image: &str,
        auth: Option<&RegistryAuth>,
        timeout: Duration,
    ) -> Result<String, RuntimeError> {
        let v1_auth = auth.map(|a| v1::AuthConfig {
            username: a.username.clone(),
            password: a.password.clone(),
            server_address: server_url(&a.server_address),
            identity_token: a.identity_token.clone(),
            registry_token: a.registry_token.clone(),
            ..Default::default()
        });
        let alpha_auth = auth.map(|a| v1alpha2::AuthConfig {
            username: a.username.clone(),
            password: a.password.clone(),
            server_address: server_url(&a.server_address),
            identity_token: a.identity_token.clone(),
            registry_token: a.registry_token.clone(),
            ..Default::default()
        });
        let v1_request = v1::PullImageRequest {
            image: spec_v1(image),
            auth: v1_auth,
            sandbox_config: None,
        };
        let alpha_request = v1alpha2::PullImageRequest {
            image: spec_alpha(image),
            auth: alpha_auth,
            sandbox_config: None,
        };
        let response = either_version!(
            self,
            async {
                let r = self
                    .v1()
                    .pull_image(with_timeout(v1_request, timeout))
                    .await;
                r.map(|r| r.into_inner().image_ref)
            },
            async {
                let mut client = self.v1alpha2();
                let r = client
                    .pull_image(with_timeout(alpha_request, timeout))
                    .await;
                r.map(|r| r.into_inner().image_ref)
            }
        );
        response.map_err(|s| RuntimeError::new(Call::Pull, image, &s, auth))
    }

    async fn status(&self, image: &str) -> Result<Option<ImageInfo>, RuntimeError> {
        let response = either_version!(
            self,
            async {
                let request = v1::ImageStatusRequest {
                    image: spec_v1(image),
                    verbose: false,
                };
                let r = self.v1().image_status(request).await;
                r.map(|r| r.into_inner().image.map(|i| info_from!(i)))
            },
            async {
                let request = v1alpha2::ImageStatusRequest {
                    image: spec_alpha(image),
                    verbose: false,
                };
                let r = self.v1alpha2().image_status(request).await;
                r.map(|r| r.into_inner().image.map(|i| info_from!(i)))
            }
        );
        response.map_err(|s| RuntimeError::new(Call::Status, image, &s, None))
    }

    async fn list(&self) -> Result<Vec<ImageInfo>, RuntimeError> {
        let response = either_version!(
            self,
            async {
                let r = self
                    .v1()
                    .list_images(v1::ListImagesRequest::default())
                    .await;
                r.map(|r| {
                    r.into_inner()
                        .images
                        .into_iter()
                        .map(|i| info_from!(i))
                        .collect()
                })
            },
            async {
                let request = v1alpha2::ListImagesRequest::default();
                let r = self.v1alpha2().list_images(request).await;
                r.map(|r| {
                    r.into_inner()
                        .images
                        .into_iter()
                        .map(|i| info_from!(i))
                        .collect()
                })
            }
        );
        response.map_err(|s| RuntimeError::new(Call::List, "", &s, None))
    }

    async fn remove(&self, image: &str) -> Result<(), RuntimeError> {
        let response = either_version!(
            self,
            async {
                let request = v1::RemoveImageRequest {
                    image: spec_v1(image),
                };
                self.v1().remove_image(request).await.map(drop)
            },
            async {
                let request = v1alpha2::RemoveImageRequest {
                    image: spec_alpha(image),
                };
                self.v1alpha2().remove_image(request).await.map(drop)
            }
        );
        response.map_err(|s| RuntimeError::new(Call::Remove, image, &s, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_cri::v1alpha2::image_service_server::{ImageService, ImageServiceServer};
    use tonic::{Request, Response, Status};

    /// An old runtime: ImageService in v1alpha2 only (tonic answers Unimplemented for v1).
    struct OldRuntime;

    #[tonic::async_trait]
    impl ImageService for OldRuntime {
        async fn list_images(
            &self,
            _: Request<v1alpha2::ListImagesRequest>,
        ) -> Result<Response<v1alpha2::ListImagesResponse>, Status> {
            Ok(Response::new(v1alpha2::ListImagesResponse {
                images: vec![v1alpha2::Image {
                    id: "sha256:old".into(),
                    repo_tags: vec!["old/image:1".into()],
                    ..Default::default()
                }],
            }))
        }
        async fn image_status(
            &self,
            _: Request<v1alpha2::ImageStatusRequest>,
        ) -> Result<Response<v1alpha2::ImageStatusResponse>, Status> {
            Ok(Response::new(v1alpha2::ImageStatusResponse::default()))
        }
        async fn pull_image(
            &self,
            request: Request<v1alpha2::PullImageRequest>,
        ) -> Result<Response<v1alpha2::PullImageResponse>, Status> {
            let auth = request.into_inner().auth.unwrap_or_default();
            Err(Status::permission_denied(format!(
                "registry said no to {}:{} at {}",
                auth.username, auth.password, auth.server_address
            )))
        }
        async fn remove_image(
            &self,
            _: Request<v1alpha2::RemoveImageRequest>,
        ) -> Result<Response<v1alpha2::RemoveImageResponse>, Status> {
            Ok(Response::new(v1alpha2::RemoveImageResponse::default()))
        }
        async fn image_fs_info(
            &self,
            _: Request<v1alpha2::ImageFsInfoRequest>,
        ) -> Result<Response<v1alpha2::ImageFsInfoResponse>, Status> {
            Ok(Response::new(v1alpha2::ImageFsInfoResponse::default()))
        }
    }

    #[tokio::test]
    async fn falls_back_to_v1alpha2_and_scrubs_what_the_runtime_echoes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("old.sock");
        let listener = tokio::net::UnixListener::bind(&socket).expect("bind");
        let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(ImageServiceServer::new(OldRuntime))
                .serve_with_incoming(incoming),
        );
        let endpoint = Endpoint::parse(&socket.display().to_string()).expect("endpoint");
        let cri = CriImages::connect(&endpoint).await.expect("connect");
        assert!(!cri.speaks_v1alpha2());
        let images = cri.list().await.expect("list through v1alpha2");
        assert_eq!(images[0].id, "sha256:old");
        assert!(cri.speaks_v1alpha2());
        assert_eq!(cri.status("old/image:1").await.expect("status"), None);

        let auth = RegistryAuth::basic("r.io:5000", "ci", "s3cret");
        let err = cri
            .pull("r.io:5000/a:1", Some(&auth), Duration::from_secs(5))
            .await
            .expect_err("refused");
        assert_eq!(err.code, tonic::Code::PermissionDenied);
        assert_eq!(
            err.to_string(),
            "failed to pull r.io:5000/a:1: registry said no to ci:*** at https://r.io:5000"
        );
    }
}
