//! A TaskRun's directories on the host, and the mapping from Tekton paths to them.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use slipway_engine::executor::{TaskRunPlan, VolumeSource};

use crate::sandbox::Bind;

/// Where one TaskRun's files live and how step paths map onto them.
#[derive(Debug)]
pub struct Layout {
    /// `<data>/taskruns/<uid>`.
    pub dir: PathBuf,
    /// Tekton path → host path, longest target first.
    pub binds: Vec<Bind>,
    /// Task volumes by name → host directory.
    pub volumes: Vec<(String, PathBuf)>,
    /// `<data>/scratch/<uid>`, removed with the TaskRun.
    own_scratch: PathBuf,
}

fn mkdir(p: &Path) -> io::Result<()> {
    std::fs::create_dir_all(p)?;
    // Steps may run as another user (runAsUser), as in a pod where these are emptyDirs.
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777))
}

fn materialize(data: &Path, dir: &Path, name: &str, src: &VolumeSource) -> io::Result<PathBuf> {
    Ok(match src {
        VolumeSource::EmptyDir { key } => {
            let p = data.join("scratch").join(key);
            mkdir(&p)?;
            p
        }
        VolumeSource::Claim { name } => {
            let p = data.join("claims").join(name);
            mkdir(&p)?;
            p
        }
        VolumeSource::HostPath { path } => PathBuf::from(path),
        VolumeSource::Files { files } => {
            let p = dir.join("files").join(name);
            mkdir(&p)?;
            for f in files {
                let target = p.join(&f.path);
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&target, &f.content)?;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(f.mode))?;
            }
            p
        }
    })
}

impl Layout {
    /// Creates the TaskRun's directories and materializes its workspaces and volumes.
    pub fn create(data: &Path, plan: &TaskRunPlan) -> io::Result<Layout> {
        let dir = data.join("taskruns").join(&plan.uid);
        let tekton = dir.join("tekton");
        for sub in ["results", "steps", "scripts", "home", "run", "creds", "bin"] {
            mkdir(&tekton.join(sub))?;
        }
        mkdir(&dir.join("workspace"))?;
        std::fs::create_dir_all(dir.join("root"))?;
        let mut binds = vec![
            Bind {
                host: tekton.clone(),
                target: "/tekton".into(),
                read_only: false,
            },
            Bind {
                host: dir.join("workspace"),
                target: "/workspace".into(),
                read_only: false,
            },
        ];
        for (i, s) in plan.steps.iter().enumerate() {
            let step_dir = tekton.join("steps").join(format!("step-{}", s.name));
            mkdir(&step_dir.join("results"))?;
            let link = tekton.join("steps").join(i.to_string());
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(format!("step-{}", s.name), &link)?;
        }
        for w in &plan.workspaces {
            let mut host = materialize(data, &dir, &format!("ws-{}", w.name), &w.source)?;
            if let Some(sub) = &w.sub_path {
                host = host.join(sub);
                mkdir(&host)?;
            }
            binds.push(Bind {
                host,
                target: w.path.clone(),
                read_only: w.read_only,
            });
        }
        let mut volumes = Vec::new();
        for (name, src) in &plan.volumes {
            volumes.push((
                name.clone(),
                materialize(data, &dir, &format!("vol-{name}"), src)?,
            ));
        }
        binds.sort_by_key(|b| b.target.len());
        Ok(Layout {
            own_scratch: data.join("scratch").join(&plan.uid),
            dir,
            binds,
            volumes,
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

    /// Removes the TaskRun's own directories (run-scoped scratch stays until the run ends).
    pub fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_dir_all(&self.own_scratch);
    }
}
