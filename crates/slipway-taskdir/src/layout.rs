//! A TaskRun's directories on this machine, and the mapping from Tekton paths to them; the
//! host executor enters them, container executors bind-mount them.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use slipway_engine::executor::{StepPlan, TaskRunPlan, VolumeSource};

/// One bind mount into a step: a host directory at a Tekton path.
#[derive(Debug, Clone)]
pub struct Bind {
    /// Path on the host.
    pub host: PathBuf,
    /// Path inside the sandbox.
    pub target: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// Where one TaskRun's files live and how step paths map onto them.
#[derive(Debug)]
pub struct Layout {
    /// `<runtime>/taskruns/<pid>-<uid>-<n>`.
    pub dir: PathBuf,
    /// Tekton path → host path, longest target first.
    pub binds: Vec<Bind>,
    /// Task volumes by name → host directory.
    pub volumes: Vec<(String, PathBuf)>,
    /// `<data>/scratch/<uid>`, removed with the TaskRun.
    own_scratch: PathBuf,
    /// Pooled `/workspace` and `/tekton/home`, returned when the TaskRun ends.
    scratch: Option<PathBuf>,
}

/// Where per-TaskRun control files go: a private directory on tmpfs when one is writable
/// (results and scripts are small and short-lived), else the data directory.
pub fn runtime_dir(data_dir: &Path) -> PathBuf {
    if let Some(d) = std::env::var_os("SLIPWAY_RUNTIME_DIR") {
        return PathBuf::from(d);
    }
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let candidates = [
        std::env::var_os("XDG_RUNTIME_DIR").map(|d| PathBuf::from(d).join("slipway")),
        Some(PathBuf::from(format!("/dev/shm/slipway-{uid}"))),
    ];
    for c in candidates.into_iter().flatten() {
        if std::fs::create_dir_all(c.join("taskruns")).is_ok() {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&c, std::fs::Permissions::from_mode(0o700));
            return c;
        }
    }
    data_dir.to_path_buf()
}

fn mkdir(p: &Path, open: bool) -> io::Result<()> {
    std::fs::create_dir_all(p)?;
    if open {
        // Steps may run as another user (runAsUser), as in a pod where these are emptyDirs.
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777))?;
    }
    Ok(())
}

/// Emptied on-disk scratch directories (`workspace/`, `home/`) kept for the next TaskRun:
/// creating and deleting directories per TaskRun costs ext4 inode allocation on every task.
#[derive(Debug, Default)]
pub struct ScratchPool {
    spare: Mutex<Vec<PathBuf>>,
}

impl ScratchPool {
    fn take(&self, data: &Path, open: bool) -> io::Result<PathBuf> {
        let reused = self.spare.lock().ok().and_then(|mut v| v.pop());
        let dir = match reused {
            Some(d) => d,
            None => {
                let d = data.join("scratch").join(format!(
                    "pool-{}-{}",
                    std::process::id(),
                    fastrand_id()
                ));
                mkdir(&d.join("workspace"), false)?;
                mkdir(&d.join("home"), false)?;
                d
            }
        };
        let mode = if open { 0o777 } else { 0o755 };
        for sub in ["workspace", "home"] {
            std::fs::set_permissions(dir.join(sub), std::fs::Permissions::from_mode(mode))?;
        }
        Ok(dir)
    }

    fn give_back(&self, dir: PathBuf) {
        let emptied = ["workspace", "home"]
            .iter()
            .all(|sub| empty_dir(&dir.join(sub)).is_ok());
        if emptied && let Ok(mut v) = self.spare.lock() {
            v.push(dir);
            return;
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Removes every spare directory (end of a run).
    pub fn drain(&self) {
        let spare: Vec<PathBuf> = self
            .spare
            .lock()
            .map(|mut v| v.drain(..).collect())
            .unwrap_or_default();
        for d in spare {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Removes what slipway processes that are gone (killed, so no destructors ran) left behind:
/// TaskRun control directories, sandbox templates and probes under `runtime`, pooled scratch
/// directories under `data`. Names carry the owner's pid.
pub fn sweep(runtime: &Path, data: &Path) {
    let dead = |pid: &str| {
        pid.parse::<u32>()
            .is_ok_and(|p| !Path::new(&format!("/proc/{p}")).exists())
    };
    for (dir, owner) in [
        (
            runtime.join("taskruns"),
            (|n: &str| {
                n.strip_prefix("template-")
                    .or_else(|| n.strip_prefix("probe-root-"))
                    .or_else(|| n.split_once('-').map(|(p, _)| p))
                    .map(str::to_string)
            }) as fn(&str) -> Option<String>,
        ),
        (data.join("scratch"), |n: &str| {
            n.strip_prefix("pool-")
                .and_then(|r| r.split_once('-'))
                .map(|(p, _)| p.to_string())
        }),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if owner(&name).is_some_and(|p| dead(&p)) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

fn empty_dir(p: &Path) -> io::Result<()> {
    for e in std::fs::read_dir(p)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            std::fs::remove_dir_all(e.path())?;
        } else {
            std::fs::remove_file(e.path())?;
        }
    }
    Ok(())
}

fn fastrand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A path built from user input that would leave the directory it belongs in.
fn escape(what: &str, path: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{what} `{}` would leave its directory; use a relative path without '..'",
            slipway_model::names::shown(path)
        ),
    )
}

/// `base` joined with the relative `rel`; an absolute `rel` or one with a `..` component is
/// refused (validation refuses them first; this is the executor's own check).
pub fn confined(base: &Path, rel: &str, what: &str) -> io::Result<PathBuf> {
    match slipway_model::names::local_path_problem(rel) {
        Some(_) => Err(escape(what, rel)),
        None => Ok(base.join(rel)),
    }
}

/// Fails when `path`, with the symlinks already on disk resolved, is not below `base`: a link
/// a step left inside a claim must not lead a later mount out of it. Checked before anything
/// is created, on the deepest part of `path` that exists.
pub(crate) fn stays_below(base: &Path, path: &Path, what: &str) -> io::Result<()> {
    let root = base.canonicalize()?;
    let mut existing = Some(path);
    while let Some(p) = existing {
        if let Ok(real) = p.canonicalize() {
            return if real.starts_with(&root) {
                Ok(())
            } else {
                Err(escape(what, &path.to_string_lossy()))
            };
        }
        existing = p.parent();
    }
    Err(escape(what, &path.to_string_lossy()))
}

/// Creates the directory `rel` below the existing `base`, refusing any path that would leave it.
pub fn confined_dir(base: &Path, rel: &str, what: &str, open: bool) -> io::Result<PathBuf> {
    let p = confined(base, rel, what)?;
    stays_below(base, &p, what)?;
    mkdir(&p, open)?;
    stays_below(base, &p, what)?;
    Ok(p)
}

fn materialize(
    data: &Path,
    dir: &Path,
    name: &str,
    src: &VolumeSource,
    open: bool,
) -> io::Result<PathBuf> {
    Ok(match src {
        // Without a cluster, a claim template is scratch space of the run.
        VolumeSource::EmptyDir { key } | VolumeSource::ClaimTemplate { key, .. } => {
            let scratch = data.join("scratch");
            mkdir(&scratch, false)?;
            confined_dir(&scratch, key, "emptyDir", open)?
        }
        VolumeSource::Claim { name } => {
            if slipway_model::names::dns_subdomain_problem(name).is_some() {
                return Err(escape("claimName", name));
            }
            let claims = data.join("claims");
            mkdir(&claims, false)?;
            confined_dir(&claims, name, "claimName", open)?
        }
        VolumeSource::HostPath { path } => PathBuf::from(path),
        VolumeSource::Cluster { kind, volume } => {
            let written = volume.get("name").and_then(|n| n.as_str()).unwrap_or(name);
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "volume `{written}` is a `{kind}` volume, which only a cluster provides: run it with --executor kubernetes, or use an emptyDir, a persistentVolumeClaim or a hostPath"
                ),
            ));
        }
        VolumeSource::Files { files, .. } => {
            let all = dir.join("files");
            mkdir(&all, false)?;
            let p = confined_dir(&all, name, "volume", open)?;
            for f in files {
                let target = confined(&p, &f.path, "projected path")?;
                if let Some(parent) = target.parent() {
                    stays_below(&p, parent, "projected path")?;
                    std::fs::create_dir_all(parent)?;
                }
                stays_below(&p, &target, "projected path")?;
                std::fs::write(&target, &f.content)?;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(f.mode))?;
            }
            p
        }
    })
}

/// `path` as a step inside a container resolves it: `.` dropped, `..` removed with the part
/// before it, and never above `/` (a container's root is its own).
pub fn normalized(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

impl Layout {
    /// Creates the TaskRun's directories and materializes its workspaces and volumes.
    /// Control files live under `runtime` (a tmpfs when there is one); scratch space on disk.
    pub fn create(
        data: &Path,
        runtime: &Path,
        pool: &ScratchPool,
        plan: &TaskRunPlan,
        always_open: bool,
    ) -> io::Result<Layout> {
        // Containers may run as any user their image names, as in a pod whose emptyDirs are 0777.
        let open = always_open
            || plan
                .steps
                .iter()
                .chain(&plan.sidecars)
                .any(|s| s.run_as_user.is_some());
        // The owner's pid in the name lets a later process sweep what a killed one left; the
        // counter keeps a retry (same uid) clear of the previous attempt's removal in progress.
        let dir = runtime.join("taskruns").join(format!(
            "{}-{}-{}",
            std::process::id(),
            plan.uid,
            fastrand_id()
        ));
        let tekton = dir.join("tekton");
        for sub in ["results", "steps", "scripts", "run", "creds", "bin"] {
            mkdir(&tekton.join(sub), open)?;
        }
        mkdir(&dir.join("root"), false)?;
        let scratch = pool.take(data, open)?;
        let mut binds = vec![
            Bind {
                host: tekton.clone(),
                target: "/tekton".into(),
                read_only: false,
            },
            Bind {
                host: scratch.join("home"),
                target: "/tekton/home".into(),
                read_only: false,
            },
            Bind {
                host: scratch.join("workspace"),
                target: "/workspace".into(),
                read_only: false,
            },
        ];
        for (i, s) in plan.steps.iter().enumerate() {
            let step_dir = tekton.join("steps").join(format!("step-{}", s.name));
            mkdir(&step_dir.join("results"), open)?;
            std::os::unix::fs::symlink(
                format!("step-{}", s.name),
                tekton.join("steps").join(i.to_string()),
            )?;
            mkdir(&tekton.join("run").join(i.to_string()), open)?;
        }
        // Workspaces are volumes too (`$(workspaces.<w>.volume)`), after the Task's own so a
        // volume of the same name wins; isolated ones are mounted only by the steps naming them.
        let mut workspace_volumes = Vec::new();
        for w in &plan.workspaces {
            let mut host = materialize(data, &dir, &w.volume(), &w.source, open)?;
            if let Some(sub) = w.sub_path.as_deref().filter(|s| !s.is_empty()) {
                host = confined_dir(&host, sub, "subPath", open)?;
            }
            if !w.isolated {
                binds.push(Bind {
                    host: host.clone(),
                    target: w.path.clone(),
                    read_only: w.read_only,
                });
            }
            workspace_volumes.push((w.volume(), host));
        }
        let mut volumes = Vec::new();
        for (name, src) in &plan.volumes {
            volumes.push((
                name.clone(),
                materialize(data, &dir, &format!("vol-{name}"), src, open)?,
            ));
        }
        volumes.extend(workspace_volumes);
        binds.sort_by_key(|b| b.target.len());
        Ok(Layout {
            own_scratch: data.join("scratch").join(&plan.uid),
            dir,
            binds,
            volumes,
            scratch: Some(scratch),
        })
    }

    /// The host directory of a task volume.
    pub fn volume(&self, name: &str) -> Option<&Path> {
        self.volumes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.as_path())
    }

    /// Translates a path as steps see it to the host path behind it (for stdout files and fallbacks).
    pub fn host_path(&self, step_path: &str, extra: &[Bind]) -> PathBuf {
        // `..` in a step's path cannot climb out of a bind as seen from the host.
        let normal;
        let step_path = if step_path.starts_with('/') {
            normal = normalized(step_path);
            normal.as_str()
        } else {
            step_path
        };
        let mut best: Option<(&Bind, usize)> = None;
        for b in self.binds.iter().chain(extra) {
            let t = b.target.trim_end_matches('/');
            if (step_path == t || step_path.starts_with(&format!("{t}/")))
                && best.is_none_or(|(_, len)| t.len() > len)
            {
                best = Some((b, t.len()));
            }
        }
        match best {
            Some((b, len)) => b.host.join(step_path[len..].trim_start_matches('/')),
            None => PathBuf::from(step_path),
        }
    }

    /// What follows a step's end: its exit code file, and its results made visible to the steps
    /// after it.
    pub fn step_ended(&self, plan: &mut TaskRunPlan, index: usize, exit_code: i32) {
        let Some(step) = plan.steps.get(index) else {
            return;
        };
        let _ = self.record_exit(index, &step.name, exit_code);
        if !step.results.is_empty() {
            let results = self.step_results(step, plan.max_result_bytes);
            plan.after_step(index, &results);
        }
    }

    /// Writes `/tekton/steps/step-<name>/exitCode`.
    pub fn record_exit(&self, _index: usize, name: &str, code: i32) -> io::Result<()> {
        std::fs::write(
            self.dir
                .join("tekton/steps")
                .join(format!("step-{name}"))
                .join("exitCode"),
            code.to_string(),
        )
    }

    /// Reads declared task results and step results; fails when one is over the size limit.
    #[allow(clippy::type_complexity)]
    pub fn read_results(
        &self,
        plan: &TaskRunPlan,
    ) -> Result<(Vec<(String, String)>, Vec<(String, String, String)>), String> {
        let read = |p: PathBuf, what: &str| -> Result<Option<String>, String> {
            match std::fs::metadata(&p) {
                Ok(m) if m.len() as usize > plan.max_result_bytes => Err(format!(
                    "{what} is {} bytes, more than the limit of {} bytes",
                    m.len(),
                    plan.max_result_bytes
                )),
                Ok(_) => Ok(std::fs::read(&p)
                    .ok()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())),
                Err(_) => Ok(None),
            }
        };
        let mut results = Vec::new();
        for r in &plan.results {
            if let Some(v) = read(
                self.dir.join("tekton/results").join(r),
                &format!("result `{r}`"),
            )? {
                results.push((r.clone(), v));
            }
        }
        let mut step_results = Vec::new();
        for s in &plan.steps {
            for r in &s.results {
                let p = self
                    .dir
                    .join("tekton/steps")
                    .join(format!("step-{}", s.name))
                    .join("results")
                    .join(r);
                if let Some(v) = read(p, &format!("step `{}` result `{r}`", s.name))? {
                    step_results.push((s.name.clone(), r.clone(), v));
                }
            }
        }
        Ok((results, step_results))
    }

    /// The results one step wrote, for the steps after it (within the size limit).
    pub fn step_results(&self, step: &StepPlan, max: usize) -> Vec<(String, String)> {
        let dir = self
            .dir
            .join("tekton/steps")
            .join(format!("step-{}", step.name))
            .join("results");
        step.results
            .iter()
            .filter_map(|r| {
                let p = dir.join(r);
                let len = std::fs::metadata(&p).ok()?.len() as usize;
                (len <= max)
                    .then(|| std::fs::read(&p).ok())
                    .flatten()
                    .map(|b| (r.clone(), String::from_utf8_lossy(&b).into_owned()))
            })
            .collect()
    }

    /// Removes the TaskRun's own directories (run-scoped scratch stays until the run ends).
    /// Removes the TaskRun's emptyDir volumes now: a retry must start with fresh ones.
    pub fn release_volumes(&self) {
        if self.own_scratch.exists() {
            let _ = std::fs::remove_dir_all(&self.own_scratch);
        }
    }

    /// The host directory behind `/tekton`.
    pub fn tekton_dir(&self) -> PathBuf {
        self.dir.join("tekton")
    }

    /// Removes the control directory and returns the scratch directories to the pool; safe to
    /// run in the background, nothing else uses them.
    pub fn remove(mut self, pool: &ScratchPool) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(s) = self.scratch.take() {
            pool.give_back(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slipway_engine::executor::{ProjectedFile, WorkspacePlan};

    fn workspace(source: VolumeSource, sub_path: Option<&str>) -> TaskRunPlan {
        TaskRunPlan {
            uid: "u1".into(),
            workspaces: vec![WorkspacePlan {
                name: "w".into(),
                path: "/workspace/w".into(),
                source,
                sub_path: sub_path.map(Into::into),
                read_only: false,
                isolated: false,
            }],
            ..TaskRunPlan::default()
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn paths_from_user_input_never_leave_their_directory() {
        let top = tempfile::tempdir().expect("top");
        let (data, runtime) = (top.path().join("data"), top.path().join("run"));
        std::fs::create_dir_all(data.join("claims/ok")).expect("claim");
        // A link a step could have left in a claim, pointing out of the data directory.
        std::os::unix::fs::symlink(top.path(), data.join("claims/ok/link")).expect("link");
        let pool = ScratchPool::default();
        let claim = |name: &str| VolumeSource::Claim { name: name.into() };
        for plan in [
            workspace(claim("../../escaped-claim"), None),
            workspace(claim("ok"), Some("../../../escaped-sub")),
            workspace(claim("ok"), Some("/escaped-abs")),
            workspace(claim("ok"), Some("link/escaped-link")),
            workspace(
                VolumeSource::EmptyDir {
                    key: "u1/../../../escaped-empty".into(),
                },
                None,
            ),
            workspace(
                VolumeSource::Files {
                    files: vec![ProjectedFile {
                        path: "../../../../../escaped-file".into(),
                        content: b"x".to_vec(),
                        mode: 0o644,
                    }],
                    origin: None,
                },
                None,
            ),
        ] {
            let err = Layout::create(&data, &runtime, &pool, &plan, false)
                .expect_err("a path that would escape is refused");
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        }
        assert_eq!(
            names(top.path()),
            ["data", "run"],
            "nothing created outside"
        );
        assert!(!Path::new("/escaped-abs").exists());
        let ok = workspace(claim("ok"), Some("src/sub"));
        let layout = Layout::create(&data, &runtime, &pool, &ok, false).expect("inside is fine");
        assert!(data.join("claims/ok/src/sub").is_dir());
        layout.remove(&pool);
    }

    #[test]
    fn a_volume_only_a_cluster_has_is_refused_by_its_name() {
        let top = tempfile::tempdir().expect("top");
        let plan = TaskRunPlan {
            volumes: vec![(
                "cache".into(),
                VolumeSource::Cluster {
                    kind: "csi".into(),
                    volume: serde_json::json!({"name": "cache", "csi": {"driver": "x"}}),
                },
            )],
            ..TaskRunPlan::default()
        };
        let err = Layout::create(
            &top.path().join("data"),
            &top.path().join("run"),
            &ScratchPool::default(),
            &plan,
            false,
        )
        .expect_err("refused");
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
        assert!(
            err.to_string()
                .starts_with("volume `cache` is a `csi` volume, which only a cluster provides"),
            "{err}"
        );
    }

    #[test]
    fn step_paths_resolve_as_inside_a_container() {
        assert_eq!(normalized("/workspace/../../etc/x"), "/etc/x");
        assert_eq!(normalized("/a/./b/"), "/a/b");
        assert_eq!(normalized(""), "/");
        let top = tempfile::tempdir().expect("top");
        let pool = ScratchPool::default();
        let layout = Layout::create(
            &top.path().join("data"),
            &top.path().join("run"),
            &pool,
            &TaskRunPlan::default(),
            false,
        )
        .expect("layout");
        let inside = layout.host_path("/workspace/out.txt", &[]);
        let climbed = layout.host_path("/workspace/../../../../../../tmp/out.txt", &[]);
        assert!(inside.starts_with(top.path()), "{}", inside.display());
        assert_eq!(
            climbed,
            Path::new("/tmp/out.txt"),
            "not the bind's host path"
        );
        layout.remove(&pool);
    }

    #[test]
    fn sweep_removes_only_what_dead_processes_left() {
        let runtime = tempfile::tempdir().expect("runtime");
        let data = tempfile::tempdir().expect("data");
        // No pid can be this large (the kernel's maximum is 2^22).
        let dead = 999_999_999u32;
        let me = std::process::id();
        let made = [
            runtime
                .path()
                .join(format!("taskruns/{dead}-aaaa/tekton/results")),
            runtime
                .path()
                .join(format!("taskruns/{me}-bbbb/tekton/results")),
            runtime.path().join(format!("taskruns/template-{dead}")),
            runtime.path().join(format!("taskruns/template-{me}")),
            data.path().join(format!("scratch/pool-{dead}-0/workspace")),
            data.path().join(format!("scratch/pool-{me}-0/workspace")),
        ];
        for d in &made {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        sweep(runtime.path(), data.path());
        let exists: Vec<bool> = made.iter().map(|d| d.exists()).collect();
        assert_eq!(exists, [false, true, false, true, false, true]);
    }
}
