//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Tekton pipelines, run unchanged, from a laptop to production.
#[derive(Debug, Parser)]
#[command(name = "slipway", version, about, propagate_version = true)]
pub struct Cli {
    /// Where runs, logs and workspaces are kept [default: $SLIPWAY_HOME, else the XDG data directory].
    #[arg(long, global = true, env = "SLIPWAY_HOME", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Config file [default: $XDG_CONFIG_HOME/slipway/config.toml when it exists].
    #[arg(long, global = true, env = "SLIPWAY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Talk to a slipway server instead of this machine's history (`http://HOST:PORT`).
    #[arg(long, global = true, env = "SLIPWAY_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// API token for the server.
    #[arg(
        long,
        global = true,
        env = "SLIPWAY_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// The key Secrets are sealed with in the data directory [default: DATA/secret.key, created on first use].
    #[arg(
        long,
        global = true,
        env = "SLIPWAY_SECRET_KEY_FILE",
        value_name = "FILE"
    )]
    pub secret_key_file: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the PipelineRuns and TaskRuns in files, or start a Pipeline or Task by name.
    Run(RunArgs),
    /// Store Tasks, Pipelines, StepActions, ConfigMaps and Secrets on the server, and start the
    /// PipelineRuns and TaskRuns in the files, as `kubectl apply -f` creates them (needs --server).
    Apply(ApplyArgs),
    /// Check files as Tekton's admission webhook would.
    Validate(ValidateArgs),
    /// List the container images the runs in files need (to mirror them, or pull them ahead).
    Images(ImagesArgs),
    /// List runs, newest first.
    Runs(RunsArgs),
    /// List or show OpenKruise's pre-warming objects (imagepulljobs, imagelistpulljobs,
    /// nodeimages), like `kubectl get`.
    Get(GetArgs),
    /// Show one run (status, tasks, steps, results), or `describe imagepulljob NAME`.
    Describe(DescribeArgs),
    /// Print a run's logs.
    Logs(LogsArgs),
    /// Cancel a running run (its finally tasks still run).
    Cancel(RunRef),
    /// Run a stored run again with the same inputs.
    Rerun(RerunArgs),
    /// Serve the HTTP API, the run queue and the web UI.
    Serve(ServeArgs),
    /// Create, list or revoke the server's API tokens (in this data directory).
    Token(TokenArgs),
    /// Manage how Secrets are kept at rest in this data directory.
    Secrets(SecretsArgs),
    /// Build an image from a Dockerfile without a daemon and push it (Kaniko's flags).
    Build(Box<BuildArgs>),
    /// Pull images onto this node through its container runtime's CRI socket, with progress:
    /// the images of --pull, or (with --server) the node's NodeImage, kept up to date.
    Agent(AgentArgs),
    /// Inside a step container of the Kubernetes executor: orders the step after the one
    /// before it, runs it and reports its results.
    #[command(hide = true)]
    Entrypoint(EntrypointArgs),
    /// Pre-warm an image onto nodes: create an ImagePullJob on the server and, with --wait,
    /// follow it node by node (needs --server).
    Prewarm(PrewarmArgs),
    /// Run the pre-warming controller against a Kubernetes cluster (OpenKruise's ImagePullJob,
    /// ImageListPullJob and NodeImage CRDs of deploy/prewarm/), found as kubectl finds it.
    PrewarmController(PrewarmControllerArgs),
    /// Run in a cluster as Tekton's controller: watch tekton.dev PipelineRuns and TaskRuns and
    /// run each new one as Pods, writing Tekton's status back.
    Controller(ControllerArgs),
}

/// `slipway prewarm-controller`: the controller of `slipway serve`, on a cluster.
#[derive(Debug, Args)]
pub struct PrewarmControllerArgs {
    /// Only the jobs of this namespace [default: every namespace].
    #[arg(long, short = 'n', value_name = "NS")]
    pub namespace: Option<String>,
    /// A node whose `Ready` condition is not `True` fails its pulls at once; this is how long
    /// a node may stay silent otherwise (the cluster's node lifecycle controller decides first).
    #[arg(long, default_value = "40s", value_parser = go_duration, value_name = "DURATION")]
    pub node_grace: std::time::Duration,
    /// Act only while holding this `coordination.k8s.io` Lease, so that several replicas may
    /// run (`NAME`, in the config's namespace, or `NAMESPACE/NAME`).
    #[arg(
        long,
        default_value = "slipway-prewarm-controller",
        value_name = "LEASE"
    )]
    pub lease: String,
    /// Act at once, without a Lease (one controller only).
    #[arg(long)]
    pub no_leader_election: bool,
}

/// `slipway controller`: the `[kubernetes]` section of the config file applies too.
#[derive(Debug, Args)]
pub struct ControllerArgs {
    /// Watch only this namespace [default: every namespace].
    #[arg(
        long,
        short = 'n',
        value_name = "NS",
        conflicts_with = "all_namespaces"
    )]
    pub namespace: Option<String>,
    /// Watch every namespace (the default; for symmetry with kubectl).
    #[arg(long, short = 'A')]
    pub all_namespaces: bool,
    /// Average API requests per second, at most.
    #[arg(long, default_value_t = DEFAULT_QPS, value_parser = positive_rate, value_name = "N")]
    pub qps: f64,
    /// API requests allowed at once above the average.
    #[arg(long, default_value_t = DEFAULT_BURST, value_parser = clap::value_parser!(u32).range(1..=100_000), value_name = "N")]
    pub burst: u32,
    /// The Lease replicas elect their leader with.
    #[arg(long, default_value = DEFAULT_LEASE, value_name = "NAME")]
    pub lease_name: String,
    /// The Lease's namespace [default: --namespace, else the kubeconfig's].
    #[arg(long, value_name = "NS")]
    pub lease_namespace: Option<String>,
    /// This replica's name in the Lease [default: host name and process id].
    #[arg(long, value_name = "ID")]
    pub identity: Option<String>,
    /// The image holding slipway's entrypoint under /tekton/bin [default: `[kubernetes] image`].
    #[arg(long, env = "SLIPWAY_KUBE_IMAGE", value_name = "IMAGE")]
    pub kube_image: Option<String>,
}

/// The controller's average API requests per second unless told.
pub const DEFAULT_QPS: f64 = 50.0;
/// The controller's requests above the average unless told.
pub const DEFAULT_BURST: u32 = 100;
/// The controller's Lease unless told.
pub const DEFAULT_LEASE: &str = "slipway-controller";

fn positive_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 100_000.0 => Ok(v),
        _ => Err(format!(
            "`{s}` is not a rate between 0 and 100000 requests a second"
        )),
    }
}

/// When to pull an image the node already has.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PullPolicyArg {
    /// Pull every time.
    Always,
    /// Pull only when the runtime does not have it.
    IfNotPresent,
}

/// `slipway agent`: pulls through CRI, like a NodeImage's tags.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// This node's name, as its statuses report it (in a DaemonSet, `NODE_NAME` from the
    /// downward API's `spec.nodeName`).
    #[arg(long, env = "NODE_NAME", value_name = "NAME")]
    pub node: String,
    /// Follow the node's NodeImage on the Kubernetes cluster (kubectl's config, else the
    /// in-cluster one) instead of a slipway server.
    #[arg(long, conflicts_with_all = ["pull", "label"])]
    pub kube: bool,
    /// The runtime's CRI socket.
    #[arg(
        long,
        default_value = "unix:///run/containerd/containerd.sock",
        value_name = "URL"
    )]
    pub cri_endpoint: String,
    /// An image to pull (repeatable).
    #[arg(long, value_name = "IMAGE")]
    pub pull: Vec<String>,
    /// Pulls in flight at once; the others wait.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=1000), value_name = "N")]
    pub max_concurrent_pulls: u32,
    /// When to pull an image the node already has.
    #[arg(long, value_enum, default_value = "always", value_name = "POLICY")]
    pub pull_policy: PullPolicyArg,
    /// Bound on one attempt.
    #[arg(long, default_value = "10m", value_parser = go_duration, value_name = "DURATION")]
    pub timeout: std::time::Duration,
    /// Retries after a failed attempt, with exponential backoff.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub backoff_limit: u32,
    /// Pull credentials: a Docker config JSON (the `.dockerconfigjson` of a pull Secret).
    #[arg(long, value_name = "FILE")]
    pub docker_config: Option<PathBuf>,
    /// With --server: a label `KEY=VALUE` of this node, for jobs' selectors (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// With --server: how often the node tells the server it is alive.
    #[arg(long, default_value = "10s", value_parser = go_duration, value_name = "DURATION")]
    pub heartbeat: std::time::Duration,
}

/// `slipway prewarm`: an ImagePullJob from the command line.
#[derive(Debug, Args)]
pub struct PrewarmArgs {
    /// The image to pull onto the nodes.
    pub image: String,
    /// Only these nodes (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        conflicts_with = "selector",
        value_name = "NAMES"
    )]
    pub names: Vec<String>,
    /// Only nodes with these labels (`k=v`, comma-separated) [default: every node].
    #[arg(long, value_delimiter = ',', value_name = "KEY=VALUE")]
    pub selector: Vec<String>,
    /// Nodes pulling at once.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub parallelism: u32,
    /// A Secret (in the job's namespace) with credentials for the registry (repeatable).
    #[arg(long, value_name = "NAME")]
    pub pull_secret: Vec<String>,
    /// Seconds one node's pull may take.
    #[arg(long, value_name = "SECONDS")]
    pub timeout_seconds: Option<u32>,
    /// Retries of one node's pull.
    #[arg(long, value_name = "N")]
    pub backoff_limit: Option<u32>,
    /// Follow the job until it completes; exit 0 when every node has the image, 1 otherwise.
    #[arg(long)]
    pub wait: bool,
    /// The job's namespace.
    #[arg(short = 'n', long, default_value = "default", value_name = "NAMESPACE")]
    pub namespace: String,
}

/// `slipway entrypoint` (hidden): written by the Kubernetes executor, not by people.
#[derive(Debug, Args)]
pub struct EntrypointArgs {
    /// Wait for this file (or FILE.err, which skips the step) before running.
    #[arg(long, value_name = "FILE")]
    pub wait_file: Option<PathBuf>,
    /// Wait until this file holds something (the sidecars are ready) before running.
    #[arg(long, value_name = "FILE")]
    pub ready_file: Option<PathBuf>,
    /// Write this file (FILE.err when the step failed) when done.
    #[arg(long, value_name = "FILE")]
    pub post_file: Option<PathBuf>,
    /// The step's directory (`/tekton/steps/step-NAME`): exitCode and results.
    #[arg(long, value_name = "DIR")]
    pub step_dir: Option<PathBuf>,
    /// The step's index: /tekton/steps/INDEX links to the step's directory.
    #[arg(long, value_name = "N")]
    pub step_index: Option<usize>,
    /// The TaskRun's results directory, reported at the end.
    #[arg(long, value_name = "DIR")]
    pub results_dir: Option<PathBuf>,
    /// The step's timeout.
    #[arg(long, value_parser = go_duration, value_name = "DURATION")]
    pub timeout: Option<std::time::Duration>,
    /// `continue` lets the steps after a failing one run.
    #[arg(long, value_name = "MODE")]
    pub on_error: Option<String>,
    /// The step's script, base64.
    #[arg(long, value_name = "BASE64")]
    pub script: Option<String>,
    /// Where scripts are written.
    #[arg(long, default_value = "/tekton/scripts", value_name = "DIR")]
    pub scripts_dir: PathBuf,
    /// Also write stdout here.
    #[arg(long, value_name = "FILE")]
    pub stdout_path: Option<PathBuf>,
    /// Also write stderr here.
    #[arg(long, value_name = "FILE")]
    pub stderr_path: Option<PathBuf>,
    /// Largest result file reported.
    #[arg(long, default_value_t = 1024 * 1024, value_name = "BYTES")]
    pub max_result_bytes: u64,
    /// Copy slipway's files from this directory (the init container)...
    #[arg(long, value_name = "DIR", requires = "copy_to")]
    pub copy_from: Option<PathBuf>,
    /// ...to this one, and exit.
    #[arg(long, value_name = "DIR", requires = "copy_from")]
    pub copy_to: Option<PathBuf>,
    /// The step's command and arguments.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `slipway build`: Kaniko's executor flags, with their meanings.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The Dockerfile (absolute, or relative to the context) [default: Dockerfile in the context].
    #[arg(short = 'f', long, value_name = "PATH")]
    pub dockerfile: Option<String>,
    /// The build context: a directory, `dir://DIR`, a `.tar.gz`, or a git URL with `#ref`.
    #[arg(short = 'c', long, default_value = ".", value_name = "CONTEXT")]
    pub context: String,
    /// Where to push the image (repeatable); `-t` as docker build spells it.
    #[arg(
        short = 'd',
        long,
        visible_short_alias = 't',
        visible_alias = "tag",
        value_name = "IMAGE"
    )]
    pub destination: Vec<String>,
    /// A build argument `KEY=VALUE` (or `KEY`, taken from the environment); repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    pub build_arg: Vec<String>,
    /// The stage to build [default: the last].
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// A label `KEY=VALUE` for the image; repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Build without pushing.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub no_push: Option<bool>,
    /// Also write the image as a tar that `docker load` and OCI tools read.
    #[arg(long, value_name = "FILE")]
    pub tar_path: Option<std::path::PathBuf>,
    /// Write the image's digest here.
    #[arg(long, value_name = "FILE")]
    pub digest_file: Option<std::path::PathBuf>,
    /// Write `REPOSITORY@DIGEST` per destination here.
    #[arg(long, value_name = "FILE")]
    pub image_name_with_digest_file: Option<std::path::PathBuf>,
    /// Write `REPOSITORY:TAG@DIGEST` per destination here.
    #[arg(long, value_name = "FILE")]
    pub image_name_tag_with_digest_file: Option<std::path::PathBuf>,
    /// Reuse results of unchanged instructions [default: true; Kaniko's default is false].
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub cache: Option<bool>,
    /// A registry repository holding cached layers [default with --cache=true: DESTINATION-REPO/cache].
    #[arg(long, value_name = "REPO")]
    pub cache_repo: Option<String>,
    /// Where blobs, unpacked layers and the cache live [default: ~/.cache/slipway/build].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<std::path::PathBuf>,
    /// How long a cached result stays usable.
    #[arg(long, default_value = "336h", value_parser = go_duration, value_name = "DURATION")]
    pub cache_ttl: std::time::Duration,
    /// Zero every time in the image (or use SOURCE_DATE_EPOCH) so equal inputs give equal digests.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub reproducible: Option<bool>,
    /// Kaniko's one-snapshot mode (layers here are always made from the changes alone).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub single_snapshot: Option<bool>,
    /// The platform to build for (`linux/amd64`).
    #[arg(long, value_name = "OS/ARCH")]
    pub custom_platform: Option<String>,
    /// Push over plain HTTP.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub insecure: Option<bool>,
    /// Pull over plain HTTP.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub insecure_pull: Option<bool>,
    /// A registry to use over plain HTTP; repeatable.
    #[arg(long, value_name = "HOST")]
    pub insecure_registry: Vec<String>,
    /// Accept any TLS certificate when pushing.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub skip_tls_verify: Option<bool>,
    /// Accept any TLS certificate when pulling.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub skip_tls_verify_pull: Option<bool>,
    /// Retries of a failed push.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub push_retry: u32,
    /// Log level (Kaniko's: panic, fatal, error, warn, info, debug, trace).
    #[arg(long, value_name = "LEVEL")]
    pub verbosity: Option<String>,
    /// Layer compression: gzip or zstd.
    #[arg(long, default_value = "gzip", value_name = "ALGO")]
    pub compression: String,
    /// Compression level: gzip 1-9 (default 1, as go-containerregistry writes), zstd 1-19 (default 3).
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=19), value_name = "N")]
    pub compression_level: Option<u32>,
    /// Manifest and layer media types: docker (as Kaniko and docker push) or oci.
    #[arg(long, default_value = "docker", value_name = "FORMAT")]
    pub format: String,
    /// A secret for `RUN --mount=type=secret`: `id=NAME,src=FILE`; repeatable.
    #[arg(long, value_name = "id=NAME,src=FILE")]
    pub secret: Vec<String>,
    /// Kaniko's snapshotter tuning; accepted, no effect here.
    #[arg(long, value_name = "MODE")]
    pub snapshot_mode: Option<String>,
    /// Kaniko's snapshotter tuning; accepted, no effect here.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub use_new_run: Option<bool>,
    /// Kaniko's snapshotter tuning; accepted, no effect here.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub compressed_caching: Option<bool>,
    /// Kaniko's clean-up of its own root; accepted, nothing to clean here.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub cleanup: Option<bool>,
    /// Print the result as JSON (digest, destinations) on stdout.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Output>,
    /// How RUN runs: overlay mounts and runc (privileged), in the builder's own root as
    /// Kaniko does (unprivileged; containers only), or whichever works here.
    #[arg(long, value_enum, default_value = "auto")]
    pub mode: BuildMode,
    /// Allow the unprivileged mode outside a container: it overwrites this machine's `/`.
    #[arg(long)]
    pub force: bool,
}

/// `slipway build --mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BuildMode {
    /// Privileged where an overlay mount and runc work, else unprivileged (said once).
    Auto,
    /// Overlay mounts and runc: root or CAP_SYS_ADMIN.
    Privileged,
    /// RUN in the builder's own root, layers from snapshots: any container.
    Unprivileged,
}

/// `slipway secrets`.
#[derive(Debug, Args)]
pub struct SecretsArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: SecretsAction,
}

/// `slipway secrets ...`.
#[derive(Debug, Subcommand)]
pub enum SecretsAction {
    /// Seal every stored Secret again with a new key, then drop the old key (stop the server first).
    RotateKey,
    /// Show the key file and the id of the key in use.
    Key,
}

/// `slipway serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (`:0` picks a free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:7080", value_name = "ADDR")]
    pub listen: String,
    /// Where steps run [default: the config file's `executor`, else host].
    #[arg(long, value_enum, env = "SLIPWAY_EXECUTOR")]
    pub executor: Option<ExecutorKind>,
    /// Runs at once; more wait in the queue as PipelineRunPending [default: `[server] max_runs`, else the number of cores].
    #[arg(long, value_name = "N", value_parser = count)]
    pub max_runs: Option<usize>,
    /// On Ctrl-C or SIGTERM, how long running runs may go on before they are stopped (queued
    /// runs stay queued).
    #[arg(long, default_value = "30s", value_parser = go_duration, value_name = "DURATION")]
    pub grace: std::time::Duration,
    /// Most bytes of step output stored per run; past it the run goes on, further lines are
    /// counted and dropped, and the run says how much [default: `[server] max_log_bytes`, else 4 GiB].
    #[arg(long, value_name = "BYTES")]
    pub max_log_bytes: Option<u64>,
    /// Ask for no API token: anyone who can reach the port can run any command as this user.
    /// Without it, a first start creates an admin token and prints it once.
    #[arg(long)]
    pub no_auth: bool,
    /// A name requests may give in `Host` besides the listening address and `localhost`, e.g.
    /// the name of a proxy in front (`NAME` or `NAME:PORT`; repeatable) [also `[server]
    /// allowed_hosts`].
    #[arg(long = "allowed-host", value_name = "NAME")]
    pub allowed_hosts: Vec<String>,
    /// Connections open at once; more are answered 503 [default: `[server] max_connections`,
    /// else 4096].
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// How long a client may take to send a request's line and headers.
    #[arg(long, default_value = "10s", value_parser = connection_timeout, value_name = "DURATION")]
    pub header_timeout: std::time::Duration,
    /// How long a client may pause while sending a request's body.
    #[arg(long, default_value = "30s", value_parser = connection_timeout, value_name = "DURATION")]
    pub body_timeout: std::time::Duration,
    /// How long a connection with no request in flight stays open (a followed log stream is
    /// in flight).
    #[arg(long, default_value = "5s", value_parser = connection_timeout, value_name = "DURATION")]
    pub idle_timeout: std::time::Duration,
    /// Pre-warming: a node whose agent has not heartbeaten for this long fails its jobs' pulls.
    #[arg(long, default_value = "40s", value_parser = go_duration, value_name = "DURATION")]
    pub node_grace: std::time::Duration,
    /// Also be Tekton's controller in the cluster of the config's `[kubernetes]` section (as
    /// `slipway controller`, with the flags below), keeping its runs and their logs in this
    /// server's history.
    #[arg(long)]
    pub controller: bool,
    /// The controller's flags (with --controller).
    #[command(flatten, next_help_heading = "Controller (with --controller)")]
    pub cluster: ControllerArgs,
}

/// A connection timeout: a duration of at least 100ms (shorter ones cut off every client).
fn connection_timeout(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d < std::time::Duration::from_millis(100) {
        return Err(format!(
            "`{s}` is too short for a connection timeout (100ms at least)"
        ));
    }
    Ok(d)
}

/// Output formats of the final object.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Output {
    /// Tekton's JSON shape.
    Json,
    /// Tekton's YAML shape.
    Yaml,
}

/// Executors.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ExecutorKind {
    /// Host processes (default).
    Host,
    /// Containers through the Docker Engine API (Docker or Podman).
    Docker,
    /// One Pod per TaskRun on a Kubernetes cluster (kubeconfig as kubectl finds it).
    Kubernetes,
}

/// Options shared by `run` and `rerun`.
#[derive(Debug, Args, Clone)]
pub struct Execution {
    /// Param values: `-p name=value` (arrays: `-p name=a,b`).
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE", global = true)]
    pub params: Vec<String>,
    /// Workspaces: `-w name=DIR` binds a directory, `-w name=emptyDir` a scratch one.
    #[arg(
        short = 'w',
        long = "workspace",
        value_name = "NAME=DIR",
        global = true
    )]
    pub workspaces: Vec<String>,
    /// Interleave step output as `[task/step] line`.
    #[arg(long, global = true)]
    pub logs: bool,
    /// Print the final object (like `kubectl get -o`).
    #[arg(short = 'o', long, value_enum, global = true)]
    pub output: Option<Output>,
    /// Where steps run [default: the config file's `executor`, else host].
    #[arg(long, value_enum, env = "SLIPWAY_EXECUTOR", global = true)]
    pub executor: Option<ExecutorKind>,
    /// With `--executor kubernetes`: the image holding slipway's entrypoint under /tekton/bin
    /// [default: `[kubernetes] image`].
    #[arg(long, global = true, env = "SLIPWAY_KUBE_IMAGE", value_name = "IMAGE")]
    pub kube_image: Option<String>,
    /// TaskRuns running at once [default: number of cores].
    #[arg(long, global = true, value_name = "N", value_parser = count)]
    pub concurrency: Option<usize>,
    /// Largest result a task may write, in bytes.
    #[arg(long, global = true, default_value_t = 1024 * 1024, value_name = "BYTES")]
    pub max_result_size: usize,
    /// Plain line output even on a terminal.
    #[arg(long, global = true)]
    pub plain: bool,
    /// With --server: print the run's name once it is queued instead of following it.
    #[arg(short = 'd', long, global = true)]
    pub detach: bool,
}

/// `slipway run`.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = false,
    subcommand_negates_reqs = true
)]
pub struct RunArgs {
    /// Start a Pipeline or Task by name instead of running the runs in the files.
    #[command(subcommand)]
    pub target: Option<RunTarget>,
    /// Files or directories of YAML (Tasks, Pipelines, runs, StepActions, ConfigMaps, Secrets).
    #[arg(short = 'f', long = "filename", value_name = "PATH", global = true)]
    pub files: Vec<PathBuf>,
    /// The namespace runs are created in when their YAML names none [default: `default`].
    #[arg(short = 'n', long, value_name = "NAMESPACE", global = true)]
    pub namespace: Option<String>,
    /// Execution options.
    #[command(flatten)]
    pub exec: Execution,
}

/// `slipway run pipeline|task NAME`.
#[derive(Debug, Subcommand)]
pub enum RunTarget {
    /// Start the Pipeline NAME (like `tkn pipeline start`).
    Pipeline {
        /// Pipeline name.
        name: String,
    },
    /// Start the Task NAME (like `tkn task start`).
    Task {
        /// Task name.
        name: String,
    },
}

/// `slipway token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: TokenAction,
}

/// `slipway token ...`.
#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Create a token and print it (once).
    Create {
        /// A name to revoke it by.
        name: String,
        /// What it may do.
        #[arg(long, value_enum, default_value_t = TokenScope::Read)]
        scope: TokenScope,
        /// Limit it to this namespace (repeatable) [default: every namespace].
        #[arg(short = 'n', long = "namespace", value_name = "NAMESPACE")]
        namespaces: Vec<String>,
    },
    /// List tokens (names and scopes; the tokens themselves are not kept).
    List,
    /// Revoke a token.
    Revoke {
        /// Its name.
        name: String,
    },
}

/// Token scopes.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum TokenScope {
    /// Read runs, logs and definitions.
    Read,
    /// Also apply, start, cancel and rerun.
    Write,
}

/// `slipway apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Files or directories of YAML.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true)]
    pub files: Vec<PathBuf>,
    /// Store everything in this namespace [default: each object's own, else `default`].
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
}

/// `slipway validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Files or directories.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// `slipway images`.
#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Files or directories with runs, Pipelines and Tasks.
    #[arg(short = 'f', long = "filename", required = true, value_name = "PATH")]
    pub files: Vec<PathBuf>,
    /// Also say which step or sidecar uses each image.
    #[arg(long)]
    pub wide: bool,
    /// Print a JSON list instead.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Output>,
}

/// `slipway runs`.
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// How many.
    #[arg(long, default_value_t = 20)]
    pub limit: i64,
    /// Print as JSON.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Output>,
    /// Namespace.
    #[command(flatten)]
    pub ns: Namespaces,
}

/// Which namespace a verb reads or changes.
#[derive(Debug, Args, Clone, Default)]
pub struct Namespaces {
    /// Namespace [default: `default`].
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Every namespace: lists show a NAMESPACE column, a run is looked up in all.
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,
}

impl Namespaces {
    /// The one namespace, `None` for all.
    pub fn selected(&self) -> Option<&str> {
        if self.all_namespaces {
            None
        } else {
            Some(self.namespace.as_deref().unwrap_or("default"))
        }
    }
}

/// A run named on the command line.
#[derive(Debug, Args)]
pub struct RunRef {
    /// Run name, uid, or a uid prefix of 8+ hex digits (the newest run of that name).
    pub run: String,
    /// Namespace.
    #[command(flatten)]
    pub ns: Namespaces,
}

/// `slipway get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// What to list: imagepulljob(s), imagelistpulljob(s) or nodeimage(s).
    pub resource: String,
    /// One object by name [default: all].
    pub name: Option<String>,
    /// Print the objects instead of a table.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Output>,
    /// Namespace (NodeImages have none).
    #[command(flatten)]
    pub ns: Namespaces,
}

/// `slipway describe`.
#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// Run name or uid; or a kind (`imagepulljob`, `imagelistpulljob`, `nodeimage`) followed by a name.
    pub run: String,
    /// The name, when the first word is a kind.
    pub name: Option<String>,
    /// Print the stored object instead.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Output>,
    /// Namespace.
    #[command(flatten)]
    pub ns: Namespaces,
}

/// `slipway logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Run name or uid.
    pub run: String,
    /// Only this pipeline task (or TaskRun).
    #[arg(short = 't', long)]
    pub task: Option<String>,
    /// Only this step.
    #[arg(short = 's', long)]
    pub step: Option<String>,
    /// Keep printing until the run ends.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Namespace.
    #[command(flatten)]
    pub ns: Namespaces,
}

/// `slipway rerun`.
#[derive(Debug, Args)]
pub struct RerunArgs {
    /// Run name or uid.
    pub run: String,
    /// Namespace.
    #[command(flatten)]
    pub ns: Namespaces,
    /// Execution options.
    #[command(flatten)]
    pub exec: Execution,
}

impl From<crate::config::ExecutorName> for ExecutorKind {
    fn from(n: crate::config::ExecutorName) -> Self {
        match n {
            crate::config::ExecutorName::Host => ExecutorKind::Host,
            crate::config::ExecutorName::Docker => ExecutorKind::Docker,
            crate::config::ExecutorName::Kubernetes => ExecutorKind::Kubernetes,
        }
    }
}

/// A duration flag: Go's syntax and range, as in the YAML (`30s`, `5m`, `1h30m`).
fn go_duration(s: &str) -> Result<std::time::Duration, String> {
    slipway_model::duration::parse(s).map_err(|e| format!("{e}; {}", e.hint()))
}

/// A count of runs or TaskRuns at once, from 1 to [`crate::config::MAX_COUNT`].
fn count(s: &str) -> Result<usize, String> {
    let n: u64 = s.trim().parse().map_err(|_| {
        format!(
            "not a whole number; use one from 1 to {}",
            crate::config::MAX_COUNT
        )
    })?;
    crate::config::count(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn run_pipeline_takes_files_and_params_after_the_name() {
        let cli = Cli::try_parse_from([
            "slipway", "run", "pipeline", "build", "-f", "dir", "-p", "a=b", "-w", "src=/tmp",
        ])
        .expect("parses");
        let Command::Run(args) = cli.command else {
            panic!("run")
        };
        assert!(matches!(args.target, Some(RunTarget::Pipeline { ref name }) if name == "build"));
        assert_eq!(args.files, vec![PathBuf::from("dir")]);
        assert_eq!(args.exec.params, vec!["a=b".to_string()]);
    }
}
