//! The OCI bundle a RUN executes in: `config.json` beside the merged root file system.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::run::{RunError, UserSpec};

/// The process of a RUN.
#[derive(Debug, Clone)]
pub struct Process {
    /// argv.
    pub args: Vec<String>,
    /// `K=V` pairs.
    pub env: Vec<String>,
    /// Working directory inside the root.
    pub cwd: String,
    /// Who runs it.
    pub user: UserSpec,
}

/// An extra mount inside the container (host files, `RUN --mount`).
#[derive(Debug, Clone)]
pub struct BundleMount {
    /// Mount point inside the container.
    pub destination: String,
    /// Host path (or `tmpfs`).
    pub source: PathBuf,
    /// `bind` or `tmpfs`.
    pub kind: &'static str,
    /// Mount options (`ro`, `size=`...).
    pub options: Vec<String>,
}

/// A bundle on disk.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The bundle directory (holds `config.json`).
    pub dir: PathBuf,
}

/// The capabilities Docker gives a container by default, so RUN behaves as under `docker build`.
const CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Paths Docker hides from containers.
const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];

/// Paths Docker makes read-only.
const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

impl Bundle {
    /// Writes `config.json` into `dir` for `process` over `rootfs`.
    pub fn write(
        dir: &Path,
        rootfs: &Path,
        process: &Process,
        mounts: &[BundleMount],
        host_network: bool,
        hostname: &str,
    ) -> Result<Self, RunError> {
        let config = spec(rootfs, process, mounts, host_network, hostname);
        let path = dir.join("config.json");
        std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&path, config.to_string()))
            .map_err(|source| RunError::Io { path, source })?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }
}

/// The runtime spec as JSON.
fn spec(
    rootfs: &Path,
    process: &Process,
    mounts: &[BundleMount],
    host_network: bool,
    hostname: &str,
) -> Value {
    let mut all_mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
    ];
    for m in mounts {
        let mut options = m.options.clone();
        if m.kind == "bind" {
            options.insert(0, "rbind".into());
        }
        all_mounts.push(json!({
            "destination": m.destination,
            "type": m.kind,
            "source": m.source,
            "options": options,
        }));
    }
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    if !host_network {
        namespaces.push(json!({"type": "network"}));
    }
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {
                "uid": process.user.uid,
                "gid": process.user.gid,
                "additionalGids": process.user.additional_gids,
            },
            "args": process.args,
            "env": process.env,
            "cwd": process.cwd,
            "capabilities": {
                "bounding": CAPABILITIES,
                "effective": CAPABILITIES,
                "permitted": CAPABILITIES,
            },
            "noNewPrivileges": false,
        },
        "root": {"path": rootfs, "readonly": false},
        "hostname": hostname,
        "mounts": all_mounts,
        "linux": {
            "namespaces": namespaces,
            "maskedPaths": MASKED,
            "readonlyPaths": READONLY,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_is_one_the_oci_types_accept() -> Result<(), Box<dyn std::error::Error>> {
        let process = Process {
            args: vec!["/bin/sh".into(), "-c".into(), "true".into()],
            env: vec!["PATH=/bin".into()],
            cwd: "/".into(),
            user: UserSpec {
                uid: 1,
                gid: 2,
                additional_gids: vec![3],
                home: "/".into(),
            },
        };
        let mounts = [BundleMount {
            destination: "/etc/hosts".into(),
            source: "/tmp/hosts".into(),
            kind: "bind",
            options: vec!["ro".into()],
        }];
        let value = spec(Path::new("/r"), &process, &mounts, false, "h");
        let parsed: oci_spec::runtime::Spec = serde_json::from_value(value)?;
        let linux = parsed.linux().as_ref().ok_or("no linux")?;
        let kinds: Vec<_> = linux
            .namespaces()
            .iter()
            .flatten()
            .map(|n| format!("{:?}", n.typ()))
            .collect();
        assert!(kinds.contains(&"Network".to_string()), "{kinds:?}");
        assert_eq!(parsed.mounts().as_ref().map(Vec::len), Some(7));
        Ok(())
    }
}
