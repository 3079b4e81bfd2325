//! `slipway run` and `slipway rerun`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::{Value, json};
use slipway_engine::{
    CancelHandle, Engine, EngineConfig, Executor, ImageBuilder, RunOptions, generate_name,
};
use slipway_exec_docker::{DockerError, DockerExecutor};
use slipway_exec_host::{HostExecutor, HostOptions};
use slipway_exec_kube::{KubeError, KubeExecutor};
use slipway_model::inputs::RunInputs;
use slipway_model::kinds::k8s::ObjectMeta;
use slipway_model::kinds::pipeline::{PipelineRef, TaskRef};
use slipway_model::kinds::run::{PipelineRunSpec, TaskRunSpec, WorkspaceBinding};
use slipway_model::validate::{Limits, validate};
use slipway_model::{Library, Object, Param, ParamSpec, ParamType, ParamValue, RunObject};
use tokio::sync::mpsc;

use crate::cli::{Execution, ExecutorKind, RerunArgs, RunArgs, RunTarget};
use crate::config::Config;
use crate::error::{CliError, EXIT_FAILED};
use crate::render::{self, Style};

/// `slipway run`.
pub async fn run(data: &Path, config: &Config, args: RunArgs) -> Result<i32, CliError> {
    if args.files.is_empty() {
        return Err(CliError::usage(
            "no files given",
            "pass the YAML with -f FILE (repeatable; directories work too)",
        ));
    }
    let lib = load(&args.files)?;
    let runs = runs_to_start(&lib, &args)?;
    for ns in args
        .namespace
        .iter()
        .chain(runs.iter().filter_map(|r| r.meta().namespace.as_ref()))
    {
        if !slipway_store::valid_namespace(ns) {
            return Err(CliError::usage(
                format!("`{ns}` is not a namespace name"),
                "namespaces are 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit",
            ));
        }
    }
    let inputs = slipway_model::inputs::definitions(&lib);
    let namespace = args.namespace.as_deref();
    execute(
        data,
        config,
        Arc::new(lib),
        runs,
        inputs,
        &args.exec,
        namespace,
    )
    .await
}

/// The runs `slipway run` starts: a new run of the named Pipeline or Task, or the runs in the
/// files, with `-p` values applied.
pub fn runs_to_start(lib: &Library, args: &RunArgs) -> Result<Vec<RunObject>, CliError> {
    Ok(match &args.target {
        Some(RunTarget::Pipeline { name }) => {
            let p = lib
                .pipelines
                .get(name)
                .ok_or_else(|| not_found("Pipeline", name, lib.pipelines.keys()))?;
            let spec = PipelineRunSpec {
                pipeline_ref: Some(PipelineRef {
                    name: Some(name.clone()),
                    ..Default::default()
                }),
                params: params_for(&args.exec.params, &p.spec.params)?,
                workspaces: empty_dirs(&args.exec.workspaces),
                ..Default::default()
            };
            vec![RunObject::PipelineRun(Object {
                api_version: "tekton.dev/v1".into(),
                meta: meta(&format!("{name}-run-")),
                spec,
                origin: None,
            })]
        }
        Some(RunTarget::Task { name }) => {
            let t = lib
                .tasks
                .get(name)
                .ok_or_else(|| not_found("Task", name, lib.tasks.keys()))?;
            let spec = TaskRunSpec {
                task_ref: Some(TaskRef {
                    name: Some(name.clone()),
                    ..Default::default()
                }),
                params: params_for(&args.exec.params, &t.spec.params)?,
                workspaces: empty_dirs(&args.exec.workspaces),
                ..Default::default()
            };
            vec![RunObject::TaskRun(Object {
                api_version: "tekton.dev/v1".into(),
                meta: meta(&format!("{name}-run-")),
                spec,
                origin: None,
            })]
        }
        None => {
            if lib.runs.is_empty() {
                let files: Vec<String> =
                    args.files.iter().map(|f| f.display().to_string()).collect();
                return Err(CliError::usage(
                    format!("no PipelineRun or TaskRun in {}", files.join(", ")),
                    "add one to the files, or start a Pipeline or Task by name: `slipway run pipeline NAME -f DIR`",
                ));
            }
            lib.runs
                .iter()
                .cloned()
                .map(|r| with_params(r, &args.exec.params, lib))
                .collect::<Result<_, _>>()?
        }
    })
}

/// `slipway rerun`.
pub async fn rerun(data: &Path, config: &Config, args: RerunArgs) -> Result<i32, CliError> {
    let store = crate::paths::open_store(data).await?;
    let row = store.find_run_in(args.ns.selected(), &args.run).await?;
    let stored = store.inputs(&row.uid).await?.ok_or_else(|| {
        CliError::usage(
            format!("run `{}` has no stored inputs", row.name),
            "start it again with `slipway run -f ...`",
        )
    })?;
    let inputs = RunInputs::from_json(&stored);
    let mut lib = inputs
        .load(&format!("stored inputs of {}", row.name))
        .map_err(CliError::Invalid)?;
    let docs = inputs.documents;
    let stored_runs = std::mem::take(&mut lib.runs);
    let runs: Vec<RunObject> = stored_runs
        .into_iter()
        .map(|r| with_params(r, &args.exec.params, &lib))
        .collect::<Result<_, _>>()?;
    drop(store);
    let namespace = Some(row.namespace.as_str());
    execute(
        data,
        config,
        Arc::new(lib),
        runs,
        docs,
        &args.exec,
        namespace,
    )
    .await
}

fn load(files: &[PathBuf]) -> Result<Library, CliError> {
    let lib = Library::load_paths(files).map_err(CliError::Invalid)?;
    let diags = validate(&lib, &Limits::default());
    if !diags.is_empty() {
        return Err(CliError::Invalid(diags));
    }
    for w in lib
        .warnings
        .iter()
        .chain(&slipway_model::validate::unresolved(&lib))
    {
        eprintln!("warning: {w}");
    }
    Ok(lib)
}

fn not_found<'a>(kind: &str, name: &str, names: impl Iterator<Item = &'a String>) -> CliError {
    let names: Vec<&str> = names.map(String::as_str).collect();
    let hint = match slipway_model::suggest::closest(name, &names) {
        Some(s) => format!("did you mean `{s}`?"),
        None if names.is_empty() => format!("no {kind} is defined in the files given with -f"),
        None => format!("{kind}s in the files: {}", names.join(", ")),
    };
    CliError::usage(format!("{kind} `{name}` not found"), hint)
}

fn meta(generate: &str) -> ObjectMeta {
    ObjectMeta {
        generate_name: Some(generate.to_string()),
        ..Default::default()
    }
}

fn empty_dirs(ws: &[String]) -> Vec<WorkspaceBinding> {
    ws.iter()
        .filter_map(|w| w.split_once('='))
        .filter(|(_, v)| *v == "emptyDir")
        .map(|(n, _)| WorkspaceBinding {
            name: n.to_string(),
            empty_dir: Some(json!({})),
            ..Default::default()
        })
        .collect()
}

fn split_kv(s: &str, flag: &str) -> Result<(String, String), CliError> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| {
            CliError::usage(
                format!("`{flag} {s}` is not NAME=VALUE"),
                format!("write `{flag} name=value`"),
            )
        })
}

/// `-p` values typed by the declarations: arrays split on commas, objects as `k:v,k:v`.
fn params_for(raw: &[String], decls: &[ParamSpec]) -> Result<Vec<Param>, CliError> {
    let mut out = Vec::new();
    for p in raw {
        let (k, v) = split_kv(p, "-p")?;
        let ty = decls
            .iter()
            .find(|d| d.name == k)
            .map(ParamSpec::effective_type)
            .unwrap_or_default();
        let value = match ty {
            ParamType::String => ParamValue::String(v),
            ParamType::Array => ParamValue::Array(v.split(',').map(str::to_string).collect()),
            ParamType::Object => ParamValue::Object(
                v.split(',')
                    .filter_map(|kv| kv.split_once(':'))
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect(),
            ),
        };
        out.push(Param { name: k, value });
    }
    Ok(out)
}

/// Applies `-p` overrides to a run from the files.
fn with_params(mut run: RunObject, raw: &[String], lib: &Library) -> Result<RunObject, CliError> {
    if raw.is_empty() {
        return Ok(run);
    }
    let (decls, params): (Vec<ParamSpec>, &mut Vec<Param>) = match &mut run {
        RunObject::PipelineRun(pr) => {
            let decls = match (&pr.spec.pipeline_spec, &pr.spec.pipeline_ref) {
                (Some(s), _) => s.params.clone(),
                (None, Some(r)) => r
                    .name
                    .as_ref()
                    .and_then(|n| lib.pipelines.get(n))
                    .map(|p| p.spec.params.clone())
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            (decls, &mut pr.spec.params)
        }
        RunObject::TaskRun(tr) => {
            let decls = match (&tr.spec.task_spec, &tr.spec.task_ref) {
                (Some(s), _) => s.params.clone(),
                (None, Some(r)) => r
                    .name
                    .as_ref()
                    .and_then(|n| lib.tasks.get(n))
                    .map(|t| t.spec.params.clone())
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            (decls, &mut tr.spec.params)
        }
    };
    for p in params_for(raw, &decls)? {
        params.retain(|x| x.name != p.name);
        params.push(p);
    }
    Ok(run)
}

/// Variables of slipway's environment its image builder keeps: where runc and the cache are,
/// how to log, and proxies. Everything else comes from the step.
const BUILDER_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "XDG_CACHE_HOME",
    "TMPDIR",
    "SLIPWAY_OCI_RUNTIME",
    "SLIPWAY_LOG",
    "NO_COLOR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

/// This binary as `slipway build`, with the same config file (its registry rewrites and mirrors),
/// for steps that run Kaniko's executor; `None` when the binary cannot be found.
fn image_builder(data: &Path, config: &Config) -> Option<ImageBuilder> {
    let program = std::env::current_exe().ok()?;
    let mut leading_args = Vec::new();
    if let Some(path) = &config.source {
        leading_args.push("--config".to_string());
        leading_args.push(path.to_string_lossy().into_owned());
    }
    leading_args.push("build".to_string());
    // The same data directory, so that the builder touches no other.
    let mut env = vec![(
        "SLIPWAY_HOME".to_string(),
        data.to_string_lossy().into_owned(),
    )];
    env.extend(
        BUILDER_ENV
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v))),
    );
    Some(ImageBuilder {
        program,
        leading_args,
        env,
    })
}

/// The executor chosen by `--executor`, else the config file, else host.
pub async fn executor(
    data: &Path,
    config: &Config,
    chosen: Option<ExecutorKind>,
) -> Result<Arc<dyn Executor>, CliError> {
    let kind = chosen
        .or(config.executor.map(Into::into))
        .unwrap_or(ExecutorKind::Host);
    Ok(match kind {
        ExecutorKind::Host => {
            // SLIPWAY_HOST_SANDBOX=0 runs steps without namespaces (host paths, rewritten text).
            let no_sandbox = std::env::var("SLIPWAY_HOST_SANDBOX").is_ok_and(|v| v == "0");
            Arc::new(
                HostExecutor::new(
                    data,
                    HostOptions {
                        no_sandbox,
                        builder: image_builder(data, config),
                        ..HostOptions::default()
                    },
                )
                .map_err(|e| CliError::Internal(e.to_string()))?,
            )
        }
        ExecutorKind::Docker => Arc::new(
            DockerExecutor::connect(
                data,
                &config.docker,
                config.registry.clone(),
                image_builder(data, config),
            )
                .await
                .map_err(|e| match e {
                    DockerError::Daemon(d) => CliError::usage(
                        d.to_string(),
                        "start the daemon, or point DOCKER_HOST or `[docker] host` in the config file at its socket",
                    ),
                    DockerError::Auth { .. } => CliError::usage(
                        e.to_string(),
                        "fix the file, or name another with `[docker] auth_file`",
                    ),
                    other => CliError::Internal(other.to_string()),
                })?,
        ),
        ExecutorKind::Kubernetes => Arc::new(kubernetes(config).await?),
    })
}

/// The Kubernetes executor; a cluster that cannot be used is the user's to fix (exit 2).
async fn kubernetes(config: &Config) -> Result<KubeExecutor, CliError> {
    KubeExecutor::connect(&config.kubernetes, config.registry.clone())
        .await
        .map_err(|e| {
            let hint = match &e {
                KubeError::NoImage => {
                    "build an image holding slipway, its loader and libraries under /tekton/bin (README: the Kubernetes executor) and pass --kube-image"
                }
                KubeError::NoConfig { .. } | KubeError::Kubeconfig { .. } | KubeError::Context { .. } => {
                    "point KUBECONFIG or `[kubernetes] kubeconfig` at a kubeconfig, or pick a context with `[kubernetes] context`"
                }
                KubeError::Forbidden { .. } => {
                    "ask for a Role allowing pods (create, get, list, watch, delete), pods/log (get), secrets and persistentvolumeclaims (create, delete) in the namespace"
                }
                _ => "check that the API server runs and that the kubeconfig names it (`kubectl cluster-info`)",
            };
            CliError::usage(crate::error::chain(&e), hint)
        })
}

async fn execute(
    data: &Path,
    config: &Config,
    lib: Arc<Library>,
    runs: Vec<RunObject>,
    inputs: Vec<Value>,
    exec: &Execution,
    namespace: Option<&str>,
) -> Result<i32, CliError> {
    let mut dirs = IndexMap::new();
    for w in &exec.workspaces {
        let (k, v) = split_kv(w, "-w")?;
        if v == "emptyDir" {
            continue;
        }
        let dir = PathBuf::from(&v);
        std::fs::create_dir_all(&dir).map_err(|e| {
            CliError::usage(
                format!("failed to use {v} as workspace `{k}`: {e}"),
                "pass a directory you can write to",
            )
        })?;
        dirs.insert(k, dir.canonicalize().unwrap_or(dir));
    }
    let mut config = config.clone();
    if let Some(image) = &exec.kube_image {
        config.kubernetes.image = Some(image.clone());
    }
    let executor = executor(data, &config, exec.executor).await?;
    let store = Arc::new(crate::paths::open_store(data).await?);
    // Local runs are the user's own: hostPath volumes reach what the user can reach anyway.
    let mut engine_config = EngineConfig {
        allow_host_paths: true,
        max_result_bytes: exec.max_result_size,
        ..EngineConfig::default()
    };
    if let Some(c) = exec.concurrency {
        engine_config.concurrency = c.max(1);
    }
    let engine = Engine::new(executor, store.clone(), engine_config);
    let mut code = 0;
    // Set by Ctrl-C: the runs after the interrupted one are not started.
    let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let total = runs.len();
    let mut printed = Vec::new();
    for (n, run) in runs.into_iter().enumerate() {
        if interrupted.load(std::sync::atomic::Ordering::SeqCst) {
            eprintln!(
                "not starting the {} remaining run(s): interrupted",
                total - n
            );
            break;
        }
        let name = match &run.meta().name {
            Some(n) => n.clone(),
            None => generate_name(run.meta().generate_name.as_deref().unwrap_or("run-")),
        };
        let uid = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = mpsc::unbounded_channel();
        let style = Style {
            live: std::io::stderr().is_terminal() && !exec.plain,
            logs: exec.logs,
            to_stderr: exec.output.is_some(),
        };
        let renderer = tokio::spawn(render::render(rx, uid.clone(), style));
        let cancel = CancelHandle::new();
        let signals = tokio::spawn(watch_signals(cancel.clone(), interrupted.clone()));
        let opts = RunOptions {
            name: name.clone(),
            uid: uid.clone(),
            watcher: Some(tx),
            workspace_dirs: dirs.clone(),
            created: None,
            namespace: namespace.map(str::to_string),
            started: None,
        };
        let record = RunInputs {
            documents: inputs.clone(),
            run: run.to_document(&name),
        }
        .to_json();
        if let Err(e) = store.save_inputs(&uid, &record).await {
            eprintln!("warning: {e}; `slipway rerun` will not work for this run");
        }
        let report = engine.run(lib.clone(), &run, opts, cancel).await;
        signals.abort();
        let _ = renderer.await;
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                // The runs that did finish are still printed.
                if let Some(format) = exec.output {
                    crate::output::print_all(std::mem::take(&mut printed), format)?;
                }
                return Err(CliError::usage(e.to_string(), "fix the run and try again"));
            }
        };
        if exec.output.is_some() {
            printed.push(report.object);
        }
        if !report.succeeded {
            code = EXIT_FAILED;
        }
    }
    if let Some(format) = exec.output {
        crate::output::print_all(printed, format)?;
    }
    Ok(code)
}

/// First Ctrl-C cancels (finally still runs); the second stops everything.
async fn watch_signals(cancel: CancelHandle, interrupted: Arc<std::sync::atomic::AtomicBool>) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let mut count = 0;
    loop {
        tokio::select! {
            r = tokio::signal::ctrl_c() => {
                if r.is_err() {
                    return;
                }
                count += 1;
                if count == 1 {
                    eprintln!("\ncancelling: running tasks stop, finally tasks run (Ctrl-C again to stop everything)");
                    interrupted.store(true, std::sync::atomic::Ordering::SeqCst);
                    cancel.cancel();
                } else {
                    eprintln!("\nstopping everything");
                    cancel.stop();
                }
            }
            Some(()) = async { match term.as_mut() { Some(t) => t.recv().await, None => std::future::pending().await } } => {
                cancel.stop();
            }
        }
    }
}
