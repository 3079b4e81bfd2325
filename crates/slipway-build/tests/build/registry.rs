//! Pull, push, credentials and `--tar-path` against the local registries and daemon.

use std::io::Read;
use std::path::Path;
use std::process::Command;

use slipway_build::image::{Image, Platform, write_tar};
use slipway_build::layer::{LayerOptions, MediaTypes, write_layer};
use slipway_build::progress::{Event, Progress, Silent};
use slipway_build::registry::{Credentials, Registry, RegistryError, RegistryOptions};
use slipway_build::store::{Digest, Store};

const PLAIN: &str = "127.0.0.1:5000";
const PRIVATE: &str = "127.0.0.1:5001";
const ENV_FILE: &str = "/tmp/slipway-docker/private-registry.env";
const DOCKER_HOST: &str = "unix:///tmp/slipway-docker/docker.sock";

/// Fails (never skips) when the test registries are not up.
fn require_registries() {
    for addr in [PLAIN, PRIVATE] {
        if std::net::TcpStream::connect(addr).is_err() {
            panic!("no registry at {addr}: run scripts/docker-env.sh first");
        }
    }
}

/// The private registry's user and password.
fn private_login() -> (String, String) {
    let text = std::fs::read_to_string(ENV_FILE)
        .unwrap_or_else(|_| panic!("no {ENV_FILE}: run scripts/docker-env.sh first"));
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("{k} missing from {ENV_FILE}"))
            .to_string()
    };
    (
        get("SLIPWAY_TEST_AUTH_USER"),
        get("SLIPWAY_TEST_AUTH_PASSWORD"),
    )
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(["-H", DOCKER_HOST])
        .args(args)
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", fastrand::u32(..))
}

fn sha256_file(p: &Path) -> Digest {
    Digest::of_bytes(&std::fs::read(p).expect("read blob"))
}

/// busybox from the plain registry plus one layer holding `/hello.txt`.
async fn busybox_plus_hello(store: &Store, registry: &Registry, text: &str) -> Image {
    let mut image = registry
        .pull(
            &format!("{PLAIN}/library/busybox:latest"),
            &Platform::host(),
            store,
            &Silent,
        )
        .await
        .expect("pull busybox");
    let upper = store.temp_dir().expect("temp");
    std::fs::write(upper.path().join("hello.txt"), text).expect("write");
    let layer = write_layer(store, upper.path(), &LayerOptions::default()).expect("layer");
    image.push_layer(layer, "COPY hello.txt /", 1_700_000_000);
    image
}

/// Counts pull progress events.
#[derive(Default)]
struct Count(std::sync::atomic::AtomicUsize);

impl Progress for Count {
    fn event(&self, e: Event) {
        if matches!(e, Event::Transfer { .. }) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

#[tokio::test]
async fn pulls_busybox_and_verifies_every_blob() {
    require_registries();
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = Store::open(tmp.path()).expect("store");
    let registry = Registry::new(RegistryOptions::default());
    let counted = Count::default();
    let reference = format!("{PLAIN}/library/busybox:latest");
    let image = registry
        .pull(&reference, &Platform::host(), &store, &counted)
        .await
        .expect("pull");
    assert!(!image.layers.is_empty());
    assert!(counted.0.load(std::sync::atomic::Ordering::Relaxed) >= image.layers.len());
    let diff_ids = &image.config.rootfs.diff_ids;
    for (layer, diff_id) in image.layers.iter().zip(diff_ids) {
        assert_eq!(&layer.diff_id.0, diff_id);
        assert_eq!(sha256_file(&store.blob_path(&layer.digest)), layer.digest);
        let dir = store.unpack_layer(layer).expect("unpack");
        assert!(dir.join("bin").exists(), "busybox's layer has /bin");
    }
    // Warm: the same image from what the store remembers, no blob moves.
    let warm_count = Count::default();
    let again = registry
        .pull(&reference, &Platform::host(), &store, &warm_count)
        .await
        .expect("warm pull");
    assert_eq!(again.layers, image.layers);
    assert_eq!(warm_count.0.load(std::sync::atomic::Ordering::Relaxed), 0);

    let missing = registry
        .pull(
            &format!("{PLAIN}/library/busybox:no-such-tag"),
            &Platform::host(),
            &store,
            &Silent,
        )
        .await
        .expect_err("no such tag");
    let text = missing.to_string();
    assert!(
        text.contains("no-such-tag") && text.contains("MANIFEST_UNKNOWN"),
        "{text}"
    );
}

#[tokio::test]
async fn pushed_image_runs_in_docker() {
    require_registries();
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = Store::open(tmp.path()).expect("store");
    let registry = Registry::new(RegistryOptions::default());
    let image = busybox_plus_hello(&store, &registry, "hello from a pushed layer").await;
    for media in [MediaTypes::Oci, MediaTypes::Docker] {
        let dest = format!("{PLAIN}/slipway-test/{}:t", unique("b"));
        let digest = registry
            .push(&image, &dest, &store, media, &Silent)
            .await
            .expect("push");
        assert_eq!(digest, image.manifest(media).expect("manifest").digest);
        // Pushing again finds every blob present.
        registry
            .push(&image, &dest, &store, media, &Silent)
            .await
            .expect("push again");
        docker(&["pull", &dest]);
        let out = docker(&["run", "--rm", &dest, "cat", "/hello.txt"]);
        assert_eq!(out, "hello from a pushed layer", "{media:?}");
        docker(&["rmi", &dest]);
    }
}

#[tokio::test]
async fn private_registry_needs_the_configured_credentials() {
    require_registries();
    let (user, password) = private_login();
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&tmp.path().join("store")).expect("store");
    let plain = Registry::new(RegistryOptions::default());
    let image = busybox_plus_hello(&store, &plain, "private").await;
    let dest = format!("{PRIVATE}/slipway-test/{}:t", unique("b"));

    let anonymous = plain
        .push(&image, &dest, &store, MediaTypes::Oci, &Silent)
        .await
        .expect_err("no credentials");
    let text = anonymous.to_string();
    assert!(matches!(anonymous, RegistryError::Denied { .. }), "{text}");
    assert!(text.contains("401") && text.contains(PRIVATE), "{text}");
    assert!(text.contains("no credentials for 127.0.0.1:5001"), "{text}");

    let config_dir = tmp.path().join("docker");
    std::fs::create_dir(&config_dir).expect("mkdir");
    let config = config_dir.join("config.json");
    let write = |pw: &str| {
        let auth = base64_encode(&format!("{user}:{pw}"));
        std::fs::write(
            &config,
            format!(r#"{{"auths":{{"{PRIVATE}":{{"auth":"{auth}"}}}}}}"#),
        )
        .expect("write config.json");
    };
    write("wrong-password");
    let wrong = Registry::new(RegistryOptions {
        credentials: Credentials::from_file(&config),
        ..RegistryOptions::default()
    });
    let err = wrong
        .push(&image, &dest, &store, MediaTypes::Oci, &Silent)
        .await
        .expect_err("wrong password");
    let text = err.to_string();
    let shown = format!("credentials for {PRIVATE} from {}", config.display());
    assert!(text.contains(&shown) && text.contains("401"), "{text}");
    assert!(
        !text.contains("wrong-password") && !text.contains(&password),
        "{text}"
    );

    write(&password);
    let good = Registry::new(RegistryOptions {
        credentials: Credentials::from_file(&config),
        ..RegistryOptions::default()
    });
    good.push(&image, &dest, &store, MediaTypes::Docker, &Silent)
        .await
        .expect("push with credentials");
    let pulled = good
        .pull(&dest, &Platform::host(), &store, &Silent)
        .await
        .expect("pull back");
    assert_eq!(pulled.layers.len(), image.layers.len());
}

fn base64_encode(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test]
async fn tar_loads_into_docker_and_is_an_oci_layout() {
    require_registries();
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&tmp.path().join("store")).expect("store");
    let registry = Registry::new(RegistryOptions::default());
    let image = busybox_plus_hello(&store, &registry, "from a tar").await;
    let name = format!("slipway-test/{}:v1", unique("tar"));
    let path = tmp.path().join("image.tar");
    write_tar(
        &image,
        &store,
        std::slice::from_ref(&name),
        MediaTypes::Oci,
        &path,
    )
    .expect("write_tar");

    let loaded = docker(&["load", "-i", path.to_str().expect("utf-8 path")]);
    assert!(loaded.contains(&name), "{loaded}");
    let out = docker(&["run", "--rm", &name, "cat", "/hello.txt"]);
    assert_eq!(out, "from a tar");
    docker(&["rmi", &name]);

    // Read back as an OCI image layout: every descriptor's blob hashes to its digest.
    let mut files = std::collections::BTreeMap::new();
    let mut archive = tar::Archive::new(std::fs::File::open(&path).expect("open tar"));
    for e in archive.entries().expect("entries") {
        let mut e = e.expect("entry");
        let p = e.path().expect("path").display().to_string();
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).expect("read");
        files.insert(p, bytes);
    }
    let json = |p: &str| -> serde_json::Value {
        serde_json::from_slice(files.get(p).unwrap_or_else(|| panic!("no {p}"))).expect("json")
    };
    assert_eq!(json("oci-layout")["imageLayoutVersion"], "1.0.0");
    let index = json("index.json");
    let desc = &index["manifests"][0];
    assert_eq!(
        desc["annotations"]["org.opencontainers.image.ref.name"],
        "v1"
    );
    let blob = |d: &serde_json::Value| -> &Vec<u8> {
        let digest = d["digest"].as_str().expect("digest");
        let bytes = files
            .get(&format!(
                "blobs/sha256/{}",
                digest.trim_start_matches("sha256:")
            ))
            .unwrap_or_else(|| panic!("no blob {digest}"));
        assert_eq!(Digest::of_bytes(bytes).0, digest);
        assert_eq!(bytes.len() as u64, d["size"].as_u64().expect("size"));
        bytes
    };
    let manifest: serde_json::Value = serde_json::from_slice(blob(desc)).expect("manifest");
    blob(&manifest["config"]);
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), image.layers.len());
    for l in layers {
        blob(l);
    }
    let docker_manifest = json("manifest.json");
    assert_eq!(docker_manifest[0]["RepoTags"][0], name.as_str());
    assert!(files.contains_key("repositories"));
}
