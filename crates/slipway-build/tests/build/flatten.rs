//! An image archive (`docker save` or `--tar-path`) flattened to what a container sees: every
//! path's type, mode, owner, size, content hash and link target, with whiteouts applied.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

/// One path of the flattened file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub sha256: String,
    pub link: String,
}

/// An image read from an archive.
pub struct Flat {
    pub files: BTreeMap<String, Entry>,
    pub config: serde_json::Value,
}

type Error = Box<dyn std::error::Error>;

/// Reads a docker-load style archive (manifest.json + config + layer files).
pub fn flatten(archive: &Path) -> Result<Flat, Error> {
    let dir = tempfile::tempdir()?;
    tar::Archive::new(std::fs::File::open(archive)?).unpack(dir.path())?;
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json"))?)?;
    let first = &manifest[0];
    let config_path = first["Config"]
        .as_str()
        .ok_or("manifest.json has no Config")?;
    let config = serde_json::from_slice(&std::fs::read(dir.path().join(config_path))?)?;
    let mut files = BTreeMap::new();
    for layer in first["Layers"]
        .as_array()
        .ok_or("manifest.json has no Layers")?
    {
        let path = dir
            .path()
            .join(layer.as_str().ok_or("layer is not a string")?);
        apply_layer(&mut files, &path)?;
    }
    Ok(Flat { files, config })
}

/// A layer file, decompressed by its magic bytes.
fn open_layer(path: &Path) -> Result<Box<dyn Read>, Error> {
    let mut magic = [0u8; 4];
    let n = std::fs::File::open(path)?.read(&mut magic)?;
    let f = std::fs::File::open(path)?;
    Ok(if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        Box::new(flate2::read::GzDecoder::new(f))
    } else if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        return Err("zstd layers are not read by this test".into());
    } else {
        Box::new(f)
    })
}

fn normalize(p: &str) -> String {
    let p = p
        .trim_start_matches("./")
        .trim_start_matches('/')
        .trim_end_matches('/');
    format!("/{p}")
}

fn remove_below(
    files: &mut BTreeMap<String, Entry>,
    dir: &str,
    keep: &BTreeSet<String>,
    inclusive: bool,
) {
    let prefix = if dir == "/" {
        "/".to_string()
    } else {
        format!("{dir}/")
    };
    let doomed: Vec<String> = files
        .keys()
        .filter(|k| {
            (k.starts_with(&prefix) || (inclusive && k.as_str() == dir)) && !keep.contains(*k)
        })
        .cloned()
        .collect();
    for k in doomed {
        files.remove(&k);
    }
}

fn apply_layer(files: &mut BTreeMap<String, Entry>, path: &Path) -> Result<(), Error> {
    let mut archive = tar::Archive::new(open_layer(path)?);
    let mut added = BTreeSet::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = normalize(&entry.path()?.to_string_lossy());
        if name == "/" {
            continue;
        }
        let (parent, base) = name.rsplit_once('/').unwrap_or(("", &name));
        let parent = if parent.is_empty() { "/" } else { parent };
        if base == ".wh..wh..opq" {
            remove_below(files, parent, &added, false);
            continue;
        }
        if let Some(gone) = base.strip_prefix(".wh.") {
            let target = if parent == "/" {
                format!("/{gone}")
            } else {
                format!("{parent}/{gone}")
            };
            remove_below(files, &target, &added, true);
            continue;
        }
        let header = entry.header().clone();
        let mode = header.mode()? & 0o7777;
        let (uid, gid) = (header.uid()?, header.gid()?);
        let kind = header.entry_type();
        let e = if kind.is_hard_link() {
            let target = normalize(
                &entry
                    .link_name()?
                    .ok_or("hardlink without target")?
                    .to_string_lossy(),
            );
            files
                .get(&target)
                .cloned()
                .ok_or_else(|| format!("hardlink {name} to missing {target}"))?
        } else if kind.is_symlink() {
            Entry {
                kind: "symlink",
                mode,
                uid,
                gid,
                size: 0,
                sha256: String::new(),
                link: entry
                    .link_name()?
                    .map(|l| l.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            }
        } else if kind.is_dir() {
            Entry {
                kind: "dir",
                mode,
                uid,
                gid,
                size: 0,
                sha256: String::new(),
                link: String::new(),
            }
        } else if kind.is_file() {
            let mut h = Sha256::new();
            let size = std::io::copy(&mut entry, &mut h)?;
            Entry {
                kind: "file",
                mode,
                uid,
                gid,
                size,
                sha256: hex::encode(h.finalize()),
                link: String::new(),
            }
        } else if kind.is_character_special() || kind.is_block_special() {
            let dev = format!(
                "{}:{}",
                header.device_major()?.unwrap_or(0),
                header.device_minor()?.unwrap_or(0)
            );
            Entry {
                kind: if kind.is_character_special() {
                    "char"
                } else {
                    "block"
                },
                mode,
                uid,
                gid,
                size: 0,
                sha256: String::new(),
                link: dev,
            }
        } else if kind.is_fifo() {
            Entry {
                kind: "fifo",
                mode,
                uid,
                gid,
                size: 0,
                sha256: String::new(),
                link: String::new(),
            }
        } else {
            continue;
        };
        // A non-directory replacing anything drops what was below it.
        if e.kind != "dir" {
            remove_below(files, &name, &added, false);
        }
        files.insert(name.clone(), e);
        added.insert(name);
    }
    Ok(())
}

/// The differences between two flattened trees, one line each.
pub fn differences(expected: &Flat, actual: &Flat) -> Vec<String> {
    let mut out = Vec::new();
    for (path, e) in &expected.files {
        match actual.files.get(path) {
            None => out.push(format!("missing {path} ({})", e.kind)),
            Some(a) if a != e => out.push(format!("differs {path}: docker {e:?} / slipway {a:?}")),
            Some(_) => {}
        }
    }
    for (path, a) in &actual.files {
        if !expected.files.contains_key(path) {
            out.push(format!("extra {path} ({})", a.kind));
        }
    }
    let fields = [
        "Env",
        "Cmd",
        "Entrypoint",
        "WorkingDir",
        "User",
        "ExposedPorts",
        "Labels",
        "Volumes",
        "StopSignal",
        "Healthcheck",
        "Shell",
        "OnBuild",
    ];
    for f in fields {
        let norm = |v: &serde_json::Value| match v {
            serde_json::Value::Null => serde_json::Value::Null,
            serde_json::Value::Array(a) if a.is_empty() => serde_json::Value::Null,
            serde_json::Value::Object(o) if o.is_empty() => serde_json::Value::Null,
            serde_json::Value::String(s) if s.is_empty() => serde_json::Value::Null,
            other => other.clone(),
        };
        let (e, a) = (
            norm(&expected.config["config"][f]),
            norm(&actual.config["config"][f]),
        );
        if e != a {
            out.push(format!("config {f}: docker {e} / slipway {a}"));
        }
    }
    for f in ["architecture", "os"] {
        if expected.config[f] != actual.config[f] {
            out.push(format!(
                "config {f}: docker {} / slipway {}",
                expected.config[f], actual.config[f]
            ));
        }
    }
    out
}
