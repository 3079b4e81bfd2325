//! The local content-addressed store: blobs by digest, unpacked layers (in overlay's format,
//! ready to be lower directories), and the instruction cache.
//!
//! Layout under the root: `blobs/sha256/<hex>`, `layers/<diff_id hex>/`, `cache/<key>.json`,
//! `images/<sha256 of the name>.json`, `tmp/<pid>-<random>`. Everything lands by `rename`
//! from `tmp/` (same file system), so a reader never sees half a file and two builds racing
//! for the same content both succeed.

mod digest;
mod temp;

use std::path::{Path, PathBuf};

pub use crate::store::digest::{Digest, is_sha256_hex};
pub use crate::store::temp::TempDir;
pub(crate) use crate::store::temp::{left_by_a_dead_process, unique_name};

use crate::image::Image;
use crate::layer::Layer;

/// Why the store failed; each reads after "failed to ".
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file system operation failed.
    #[error("{op} {}", path.display())]
    Io {
        /// What was being done (`create`, `rename`, ...).
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Text that should be a digest is not one.
    #[error("read `{text}` as a digest: expected `sha256:` and 64 lowercase hex digits")]
    BadDigest {
        /// The text (shortened).
        text: String,
    },
    /// A cache key is not a hex sha256.
    #[error("use `{key}` as a cache key: expected 64 lowercase hex digits")]
    BadKey {
        /// The key (shortened).
        key: String,
    },
    /// A blob the operation needs is not in the store.
    #[error("find blob {digest} in the store (pull or build it first)")]
    MissingBlob {
        /// The digest.
        digest: Digest,
    },
    /// A record could not be encoded.
    #[error("encode {what}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A layer blob could not be unpacked.
    #[error("unpack layer {digest}")]
    Unpack {
        /// The layer's blob digest.
        digest: Digest,
        /// The cause.
        #[source]
        source: Box<crate::layer::LayerError>,
    },
}

/// What the driver remembers about one instruction: the layer it made (none for metadata-only
/// instructions) and when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CacheRecord {
    /// The layer the instruction produced, if any.
    pub layer: Option<Layer>,
    /// When the record was made (Unix seconds).
    pub created_unix: i64,
}

/// An image record as kept on disk; the name guards against hash collisions of names.
#[derive(serde::Serialize, serde::Deserialize)]
struct ImageRecord {
    name: String,
    image: Image,
}

/// The store under one root directory (`--cache-dir`, else `~/.cache/slipway/build`).
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// Subdirectories [`Store::open`] creates.
const DIRS: [&str; 5] = ["blobs/sha256", "layers", "cache", "images", "tmp"];

impl Store {
    /// Opens (creating) the store at `root` and removes temporary files of builds that died.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        for d in DIRS {
            let p = root.join(d);
            std::fs::create_dir_all(&p).map_err(io("create", &p))?;
        }
        let store = Store {
            root: root.to_path_buf(),
        };
        let tmp = store.tmp();
        temp::remove_stale(&tmp).map_err(io("clean", &tmp))?;
        Ok(store)
    }

    /// `$XDG_CACHE_HOME/slipway/build`, else `~/.cache/slipway/build`.
    pub fn default_root() -> PathBuf {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        base.join("slipway").join("build")
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Where the blob with digest `d` is (or would be).
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs").join("sha256").join(d.hex())
    }

    /// True when the blob is present.
    pub fn has_blob(&self, d: &Digest) -> bool {
        is_sha256_hex(d.hex()) && self.blob_path(d).is_file()
    }

    /// Stores `bytes` (configs, manifests) and returns their digest.
    pub fn put_blob_bytes(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let d = Digest::of_bytes(bytes);
        if !self.has_blob(&d) {
            self.write_atomic(&self.blob_path(&d), bytes)?;
        }
        Ok(d)
    }

    /// Moves a finished file (written under [`Store::temp_dir`]) to the blob `d`; the caller
    /// has verified that `d` is its digest.
    pub fn commit_blob(&self, file: &Path, d: &Digest) -> Result<PathBuf, StoreError> {
        let dest = self.blob_path(d);
        std::fs::rename(file, &dest).map_err(io("rename", file))?;
        Ok(dest)
    }

    /// A fresh scratch directory under the store (same file system: renames out of it are
    /// atomic); removed on drop.
    pub fn temp_dir(&self) -> Result<TempDir, StoreError> {
        let tmp = self.tmp();
        TempDir::create_in(&tmp).map_err(io("create a directory in", &tmp))
    }

    fn layer_path(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex())
    }

    /// The unpacked layer (overlay's format: whiteouts as 0:0 devices), if present.
    pub fn layer_dir(&self, diff_id: &Digest) -> Option<PathBuf> {
        let p = self.layer_path(diff_id);
        (is_sha256_hex(diff_id.hex()) && p.is_dir()).then_some(p)
    }

    /// Unpacks `layer`'s blob into its layer directory unless already there. Two builds may
    /// race: each unpacks aside and renames; the loser's copy is dropped.
    pub fn unpack_layer(&self, layer: &Layer) -> Result<PathBuf, StoreError> {
        if let Some(p) = self.layer_dir(&layer.diff_id) {
            return Ok(p);
        }
        check_hex(&layer.diff_id)?;
        if !self.has_blob(&layer.digest) {
            return Err(StoreError::MissingBlob {
                digest: layer.digest.clone(),
            });
        }
        let scratch = self.temp_dir()?;
        let aside = scratch.path().join("layer");
        crate::layer::unpack(&self.blob_path(&layer.digest), &layer.media_type, &aside).map_err(
            |e| StoreError::Unpack {
                digest: layer.digest.clone(),
                source: Box::new(e),
            },
        )?;
        self.settle_layer(&aside, &layer.diff_id)
    }

    /// Makes an overlay upper directory (already in overlay's format) the unpacked directory
    /// of the layer `diff_id` by renaming it; when that layer is already unpacked, `upper` is
    /// left as it is and the existing directory returned.
    pub fn adopt_layer_dir(&self, upper: &Path, diff_id: &Digest) -> Result<PathBuf, StoreError> {
        if let Some(p) = self.layer_dir(diff_id) {
            return Ok(p);
        }
        check_hex(diff_id)?;
        self.settle_layer(upper, diff_id)
    }

    /// Renames `dir` to the layer directory; losing a race to another build is success.
    fn settle_layer(&self, dir: &Path, diff_id: &Digest) -> Result<PathBuf, StoreError> {
        let dest = self.layer_path(diff_id);
        match std::fs::rename(dir, &dest) {
            Ok(()) => Ok(dest),
            Err(_) if dest.is_dir() => Ok(dest),
            Err(e) => Err(StoreError::Io {
                op: "rename",
                path: dir.to_path_buf(),
                source: e,
            }),
        }
    }

    fn cache_path(&self, key: &str) -> PathBuf {
        self.root.join("cache").join(format!("{key}.json"))
    }

    /// The cache record under `key` (a hex sha256), if any and readable.
    pub fn cache_get(&self, key: &str) -> Option<CacheRecord> {
        if !is_sha256_hex(key) {
            return None;
        }
        read_json(&self.cache_path(key))
    }

    /// Records `record` under `key` (a hex sha256).
    pub fn cache_put(&self, key: &str, record: &CacheRecord) -> Result<(), StoreError> {
        if !is_sha256_hex(key) {
            return Err(StoreError::BadKey {
                key: key.chars().take(80).collect(),
            });
        }
        let bytes = serde_json::to_vec(record).map_err(|source| StoreError::Encode {
            what: "a cache record",
            source,
        })?;
        self.write_atomic(&self.cache_path(key), &bytes)
    }

    fn image_path(&self, name: &str) -> PathBuf {
        let key = Digest::of_bytes(name.as_bytes());
        self.root.join("images").join(format!("{}.json", key.hex()))
    }

    /// The image remembered under `name` (any text: a reference with its platform, a
    /// manifest digest), if any.
    pub fn image_get(&self, name: &str) -> Option<Image> {
        let rec: ImageRecord = read_json(&self.image_path(name))?;
        (rec.name == name).then_some(rec.image)
    }

    /// Remembers `image` under `name`.
    pub fn image_put(&self, name: &str, image: &Image) -> Result<(), StoreError> {
        let rec = ImageRecord {
            name: name.to_string(),
            image: image.clone(),
        };
        let bytes = serde_json::to_vec(&rec).map_err(|source| StoreError::Encode {
            what: "an image record",
            source,
        })?;
        self.write_atomic(&self.image_path(name), &bytes)
    }

    /// Writes `bytes` to a file in `tmp/`, then renames it to `dest`.
    fn write_atomic(&self, dest: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        let part = self.tmp().join(temp::unique_name());
        std::fs::write(&part, bytes).map_err(io("write", &part))?;
        std::fs::rename(&part, dest).map_err(|e| {
            temp::remove_any(&part);
            StoreError::Io {
                op: "rename into",
                path: dest.to_path_buf(),
                source: e,
            }
        })
    }
}

/// Reads a JSON record; anything unreadable counts as absent (the cache is advisory).
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let bytes = std::fs::read(path).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "ignoring an unreadable record");
            None
        }
    }
}

/// Refuses a digest whose hex part could not be a file name in the store.
fn check_hex(d: &Digest) -> Result<(), StoreError> {
    if is_sha256_hex(d.hex()) {
        Ok(())
    } else {
        Err(StoreError::BadDigest {
            text: d.0.chars().take(80).collect(),
        })
    }
}

/// Maps an I/O error to [`StoreError::Io`] for `op` on `path`.
fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { op, path, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> String {
        Digest::of_bytes(&[n]).hex().to_string()
    }

    #[test]
    fn open_makes_the_layout_and_removes_dead_builds_temp_dirs() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = Store::open(tmp.path()).expect("open");
        for d in DIRS {
            assert!(tmp.path().join(d).is_dir(), "{d}");
        }
        // i32::MAX is above any pid_max, so no process owns it.
        let dead = tmp.path().join("tmp/2147483647-0000");
        let alive = store.temp_dir().expect("temp").keep();
        let foreign = tmp.path().join("tmp/not-ours");
        std::fs::create_dir_all(dead.join("sub")).expect("mkdir");
        std::fs::create_dir(&foreign).expect("mkdir");
        Store::open(tmp.path()).expect("reopen");
        assert!(!dead.exists(), "a dead build's temp dir is removed");
        assert!(alive.exists(), "a running build's temp dir stays");
        assert!(foreign.exists(), "names this store did not make stay");
    }

    #[test]
    fn temp_dirs_go_away_on_drop() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = Store::open(tmp.path()).expect("open");
        let t = store.temp_dir().expect("temp");
        let p = t.path().to_path_buf();
        std::fs::write(p.join("f"), "x").expect("write");
        drop(t);
        assert!(!p.exists());
    }

    #[test]
    fn blobs_cache_and_images_round_trip() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = Store::open(tmp.path()).expect("open");
        let d = store.put_blob_bytes(b"{}").expect("put");
        assert!(store.has_blob(&d));
        assert_eq!(std::fs::read(store.blob_path(&d)).expect("read"), b"{}");
        assert_eq!(store.put_blob_bytes(b"{}").expect("again"), d);

        assert_eq!(store.cache_get(&key(1)), None);
        let rec = CacheRecord {
            layer: None,
            created_unix: 42,
        };
        store.cache_put(&key(1), &rec).expect("cache_put");
        assert_eq!(store.cache_get(&key(1)), Some(rec.clone()));
        assert!(matches!(
            store.cache_put("../escape", &rec),
            Err(StoreError::BadKey { .. })
        ));

        let image = Image::scratch(&crate::image::Platform::host());
        store
            .image_put("alpine:3 linux/amd64", &image)
            .expect("put");
        let back = store.image_get("alpine:3 linux/amd64").expect("get");
        assert_eq!(back.config, image.config);
        assert!(store.image_get("alpine:3 linux/arm64").is_none());
    }

    #[test]
    fn unpack_layer_is_idempotent_and_adopt_renames() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&tmp.path().join("s")).expect("open");
        let upper = store.temp_dir().expect("temp");
        std::fs::write(upper.path().join("f"), "x").expect("write");
        let layer = crate::layer::write_layer(&store, upper.path(), &Default::default())
            .expect("write_layer");
        assert_eq!(store.layer_dir(&layer.diff_id), None);
        let first = store.unpack_layer(&layer).expect("unpack");
        assert_eq!(store.unpack_layer(&layer).expect("again"), first);
        assert_eq!(std::fs::read(first.join("f")).expect("read"), b"x");

        let other = Digest::of_bytes(b"other layer");
        let adopted = store.adopt_layer_dir(upper.path(), &other).expect("adopt");
        assert!(!upper.path().exists(), "renamed, not copied");
        assert_eq!(store.layer_dir(&other), Some(adopted));

        let missing = Layer {
            digest: Digest::of_bytes(b"absent"),
            ..layer
        };
        let missing = Layer {
            diff_id: Digest::of_bytes(b"absent diff"),
            ..missing
        };
        assert!(matches!(
            store.unpack_layer(&missing),
            Err(StoreError::MissingBlob { .. })
        ));
    }
}
