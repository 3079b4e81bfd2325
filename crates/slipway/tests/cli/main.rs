//! End-to-end tests of the `slipway` binary: the conformance corpus, bad input, history, crashes,
//! and the Docker executor (in `docker`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod agent;
mod build;
mod build_unprivileged;
mod controller;
mod deploy;
mod docker;
mod flood;
mod kaniko;
mod kube;
mod namespaces;
mod prewarm;
mod prewarm_api;
mod prewarm_kube;
mod secrets;
mod server;
mod server_door;
mod tekton_pipeline;
mod ui;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_slipway")
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/tekton-examples")
}

fn slipway(home: &Path, args: &[&str]) -> Output {
    slipway_with(home, args, &[])
}

fn slipway_with(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env("SLIPWAY_HOME", home)
        .env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("slipway runs")
}

fn spawn(home: &Path, args: &[&str]) -> Child {
    spawn_with(home, args, &[])
}

fn spawn_with(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Child {
    Command::new(bin())
        .args(args)
        .env("SLIPWAY_HOME", home)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("slipway starts")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The run objects printed by `-o json`: one object, or a `List` of one per run in the file.
fn objects(out: &Output) -> Vec<Value> {
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        return Vec::new();
    }
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e}): {}", text(&out.stdout)));
    if v["kind"] == "List" {
        v["items"].as_array().cloned().unwrap_or_default()
    } else {
        vec![v]
    }
}

fn condition(o: &Value) -> (String, String) {
    let c = &o["status"]["conditions"][0];
    (
        c["status"].as_str().unwrap_or("").to_string(),
        c["reason"].as_str().unwrap_or("").to_string(),
    )
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml") {
            out.push(p);
        }
    }
}

/// Runs `slipway run -f FILE ARGS` for every file, four at a time, with one home and `env`.
fn run_all(
    home: &Path,
    files: &[PathBuf],
    args: &[&str],
    env: &[(&str, &str)],
) -> Vec<(PathBuf, Output)> {
    std::thread::scope(|s| {
        let handles: Vec<_> = files
            .chunks(files.len().div_ceil(4).max(1))
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|f| {
                            let mut cmd = Command::new(bin());
                            cmd.args(["run", "-f", &f.to_string_lossy()])
                                .args(args)
                                .env("SLIPWAY_HOME", home)
                                .env("NO_COLOR", "1");
                            for (k, v) in env {
                                cmd.env(k, v);
                            }
                            (f.clone(), cmd.output().expect("slipway runs"))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("thread"))
            .collect()
    })
}

/// The examples Tekton's e2e runs must reach `Succeeded` (status True) under the host executor.
/// `no-ci/compressed-results-pipeline.yaml` writes results through `$(results.digest-${i}.path)`,
/// a name Tekton never substitutes; Tekton's own e2e skips `no-ci/`, and real Tekton fails it with
/// `InvalidTaskResultReference`, which is asserted here.
fn conformance(env: &[(&str, &str)]) {
    let home = tempfile::tempdir().expect("tempdir");
    let mut files = Vec::new();
    yaml_files(&examples(), &mut files);
    files.sort();
    assert_eq!(files.len(), 40, "the corpus has 40 examples");
    let results = run_all(
        home.path(),
        &files,
        &["-o", "json", "--plain", "--logs"],
        env,
    );
    let mut failures = Vec::new();
    for (f, out) in &results {
        let name = f
            .strip_prefix(examples())
            .unwrap_or(f)
            .display()
            .to_string();
        let objs = objects(out);
        let expect_fail = name.starts_with("pipelineruns/no-ci/");
        if objs.is_empty() {
            failures.push(format!("{name}: no object printed\n{}", text(&out.stderr)));
            continue;
        }
        for o in &objs {
            let (status, reason) = condition(o);
            let ok = if expect_fail {
                status == "False" && reason == "InvalidTaskResultReference"
            } else {
                status == "True"
            };
            if !ok {
                failures.push(format!(
                    "{name}: {status}/{reason}\n{}{}",
                    text(&out.stdout)
                        .lines()
                        .filter(|l| l.starts_with('['))
                        .collect::<Vec<_>>()
                        .join("\n"),
                    text(&out.stderr)
                ));
            }
        }
        let code = out.status.code();
        if code != Some(if expect_fail { 1 } else { 0 }) {
            failures.push(format!("{name}: exit code {code:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} example(s) off:\n{}",
        failures.len(),
        failures.join("\n---\n")
    );
}

#[test]
fn conformance_examples_reach_their_tekton_outcome() {
    conformance(&[]);
}

/// Where namespaces are unavailable, Tekton paths in step text are rewritten to host paths.
#[test]
fn conformance_examples_pass_without_namespaces_too() {
    conformance(&[("SLIPWAY_HOST_SANDBOX", "0")]);
}

fn run_json(home: &Path, file: &Path) -> (Output, Vec<Value>) {
    let out = slipway(
        home,
        &[
            "run",
            "-f",
            &file.to_string_lossy(),
            "-o",
            "json",
            "--plain",
        ],
    );
    let objs = objects(&out);
    (out, objs)
}

fn result<'a>(o: &'a Value, name: &str) -> &'a Value {
    o["status"]["results"]
        .as_array()
        .and_then(|r| r.iter().find(|x| x["name"] == name))
        .map(|x| &x["value"])
        .unwrap_or(&Value::Null)
}

/// The host executor runs steps as processes here and says so once; the engine asks the
/// executor, it does not guess from its name.
#[test]
fn the_host_executor_says_once_that_images_are_ignored() {
    let home = tempfile::tempdir().expect("tempdir");
    let (out, objs) = run_json(
        home.path(),
        &examples().join("pipelineruns/pipelinerun-with-final-results.yaml"),
    );
    assert!(!objs.is_empty());
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(
        said.matches("steps run as processes on this machine; `image` is ignored")
            .count(),
        1,
        "{said}"
    );
}

#[test]
fn pipeline_results_carry_task_and_finally_values() {
    let home = tempfile::tempdir().expect("tempdir");
    let (_, objs) = run_json(
        home.path(),
        &examples().join("pipelineruns/pipelinerun-with-final-results.yaml"),
    );
    assert_eq!(result(&objs[0], "task-result"), "2");
    assert_eq!(result(&objs[0], "finally-result"), "484");
}

#[test]
fn matrix_results_fan_in_in_combination_order() {
    let home = tempfile::tempdir().expect("tempdir");
    let (_, objs) = run_json(
        home.path(),
        &examples().join("pipelineruns/beta/pipelinerun-with-matrix-emitting-results.yaml"),
    );
    let urls = result(&objs[0], "pr-result-1")
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(urls.len(), 9);
    assert_eq!(urls[0], "https://api.example/get-report/linux-chrome");
    assert_eq!(urls[1], "https://api.example/get-report/mac-chrome");
    assert_eq!(urls[8], "https://api.example/get-report/windows-firefox");
    let children = objs[0]["status"]["childReferences"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    assert_eq!(children, 9 + 1 + 9);
}

#[test]
fn skipped_tasks_are_reported_with_tekton_reasons() {
    let home = tempfile::tempdir().expect("tempdir");
    let (_, objs) = run_json(
        home.path(),
        &examples().join("pipelineruns/pipelinerun-task-execution-status.yaml"),
    );
    assert_eq!(condition(&objs[0]), ("True".into(), "Completed".into()));
    let skipped = &objs[0]["status"]["skippedTasks"][0];
    assert_eq!(skipped["name"], "task2");
    assert_eq!(skipped["reason"], "When Expressions evaluated to false");
}

#[test]
fn large_results_pass_whole() {
    let home = tempfile::tempdir().expect("tempdir");
    let (_, objs) = run_json(
        home.path(),
        &examples().join("taskruns/beta/large-task-result.yaml"),
    );
    let r = result(&objs[0], "result5").as_str().unwrap_or("");
    assert!(r.len() > 3000, "result5 is {} bytes", r.len());
}

#[test]
fn retries_count_up_until_success() {
    let home = tempfile::tempdir().expect("tempdir");
    let (out, objs) = run_json(home.path(), &fixtures().join("retry.yaml"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(result(&objs[0], "attempt"), "2");
}

#[test]
fn step_and_task_timeouts_fail_the_run() {
    let home = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let (out, objs) = run_json(home.path(), &fixtures().join("timeouts.yaml"));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "timeouts were not enforced"
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(condition(&objs[0]).1, "Failed");
    assert_eq!(
        objs[0]["status"]["steps"][0]["terminated"]["reason"],
        "TimeoutExceeded"
    );
    assert_eq!(condition(&objs[1]).1, "TaskRunTimeout");
}

#[test]
fn failed_run_keeps_logs_and_results_and_exits_1() {
    let home = tempfile::tempdir().expect("tempdir");
    let (out, objs) = run_json(home.path(), &fixtures().join("failing.yaml"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(condition(&objs[0]), ("False".into(), "Failed".into()));
    assert_eq!(
        objs[0]["status"]["conditions"][0]["message"],
        "\"step-work\" exited with code 3"
    );
    assert_eq!(result(&objs[0], "partial"), "kept");
    let logs = slipway(home.path(), &["logs", "fails-after-output"]);
    assert_eq!(
        text(&logs.stdout).trim(),
        "[fails-after-output/work] line before failure"
    );
    let described = slipway(home.path(), &["describe", "fails-after-output"]);
    assert!(
        text(&described.stdout).contains("Status:    Failed"),
        "{}",
        text(&described.stdout)
    );
}

#[test]
fn start_a_pipeline_by_name_with_params_and_a_directory_workspace() {
    let home = tempfile::tempdir().expect("tempdir");
    let ws = tempfile::tempdir().expect("workspace");
    let lib = fixtures().join("pipeline-lib.yaml");
    let out = slipway(
        home.path(),
        &[
            "run",
            "pipeline",
            "greetings",
            "-f",
            &lib.to_string_lossy(),
            "-p",
            "names=ada,grace",
            "-w",
            &format!("shared={}", ws.path().display()),
            "-o",
            "json",
            "--plain",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let objs = objects(&out);
    assert_eq!(result(&objs[0], "count"), "2");
    let written = std::fs::read_to_string(ws.path().join("greetings.txt"))
        .expect("file in the bound directory");
    assert_eq!(written, "hello ada\nhello grace\n");
}

#[test]
fn history_lists_and_reruns() {
    let home = tempfile::tempdir().expect("tempdir");
    let (out, _) = run_json(
        home.path(),
        &examples().join("pipelineruns/pipelinerun-results-with-params.yaml"),
    );
    assert_eq!(out.status.code(), Some(0));
    let rerun = slipway(
        home.path(),
        &["rerun", "test-case", "-o", "json", "--plain"],
    );
    // `rerun` accepts the generated name of the first run only through `runs`; look it up.
    let listed = slipway(home.path(), &["runs", "-o", "json"]);
    let items = serde_json::from_slice::<Value>(&listed.stdout).expect("list JSON");
    let first = items["items"][0]["metadata"]["name"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(first.starts_with("test-case-"), "{first}");
    assert_eq!(
        rerun.status.code(),
        Some(2),
        "unknown names are invalid input"
    );
    let rerun = slipway(home.path(), &["rerun", &first, "-o", "json", "--plain"]);
    assert_eq!(rerun.status.code(), Some(0), "{}", text(&rerun.stderr));
    let again = objects(&rerun);
    assert_eq!(condition(&again[0]).0, "True");
    let listed = slipway(home.path(), &["runs"]);
    assert_eq!(
        text(&listed.stdout)
            .lines()
            .filter(|l| l.contains("test-case-"))
            .count(),
        2,
        "{}",
        text(&listed.stdout)
    );
}

fn wait_for_log(home: &Path, run: &str, needle: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let out = slipway(home, &["logs", run]);
        if text(&out.stdout).contains(needle) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Say what the run was doing, so a failure here can be understood.
    let _ = child.kill();
    let mut output = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut output);
    }
    let described = slipway(home, &["describe", run, "-o", "json"]);
    let logs = slipway(home, &["logs", run]);
    panic!(
        "`{needle}` never appeared in the logs of {run}\nrun stderr:\n{output}\ndescribe: {}{}\nlogs: {}{}",
        text(&described.stdout),
        text(&described.stderr),
        text(&logs.stdout),
        text(&logs.stderr)
    );
}

#[test]
fn sigkill_mid_run_leaves_an_interrupted_run_with_its_logs() {
    let home = tempfile::tempdir().expect("tempdir");
    let file = fixtures().join("slow-with-finally.yaml");
    let mut child = spawn(
        home.path(),
        &["run", "-f", &file.to_string_lossy(), "--plain"],
    );
    wait_for_log(home.path(), "slow-with-finally", "started-slow", &mut child);
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let out = slipway(
        home.path(),
        &["describe", "slow-with-finally", "-o", "json"],
    );
    let o: Value = serde_json::from_slice(&out.stdout).expect("object");
    assert_eq!(condition(&o), ("False".into(), "Interrupted".into()));
    let logs = slipway(home.path(), &["logs", "slow-with-finally"]);
    assert!(text(&logs.stdout).contains("[slow/wait] started-slow"));
}

#[test]
fn cancel_stops_tasks_and_runs_finally() {
    let home = tempfile::tempdir().expect("tempdir");
    let file = fixtures().join("slow-with-finally.yaml");
    let mut child = spawn(
        home.path(),
        &[
            "run",
            "-f",
            &file.to_string_lossy(),
            "--plain",
            "--logs",
            "-o",
            "json",
        ],
    );
    wait_for_log(home.path(), "slow-with-finally", "started-slow", &mut child);
    let c = slipway(home.path(), &["cancel", "slow-with-finally"]);
    assert_eq!(c.status.code(), Some(0), "{}", text(&c.stderr));
    let out = child.wait_with_output().expect("run ends");
    assert_eq!(out.status.code(), Some(1));
    let o = &objects(&out)[0];
    assert_eq!(condition(o), ("False".into(), "Cancelled".into()));
    let logs = text(&slipway(home.path(), &["logs", "slow-with-finally"]).stdout);
    assert!(logs.contains("[cleanup/say] finally-ran-Failed"), "{logs}");
    assert!(!logs.contains("should-not-run"));
    let skipped = o["status"]["skippedTasks"][0]["reason"]
        .as_str()
        .unwrap_or("");
    assert_eq!(skipped, "PipelineRun was gracefully cancelled");
}

fn bad(name: &str) -> (Option<i32>, String) {
    let home = tempfile::tempdir().expect("tempdir");
    let path = fixtures().join("bad").join(name);
    let out = slipway(home.path(), &["validate", &path.to_string_lossy()]);
    let root = fixtures().join("bad").to_string_lossy().into_owned();
    (
        out.status.code(),
        text(&out.stderr).replace(&root, "<fixtures>"),
    )
}

macro_rules! bad_input {
    ($($test:ident => $file:expr),* $(,)?) => {$(
        #[test]
        fn $test() {
            let (code, stderr) = bad($file);
            assert_eq!(code, Some(2), "{stderr}");
            assert!(!stderr.contains("panicked"), "{stderr}");
            insta::assert_snapshot!(stderr);
        }
    )*};
}

bad_input! {
    bad_typo_in_field => "typo.yaml",
    bad_wrong_type => "wrong-type.yaml",
    bad_missing_param => "missing-param.yaml",
    bad_unknown_task => "unknown-task.yaml",
    bad_unknown_result => "unknown-result.yaml",
    bad_cycle => "cycle.yaml",
    bad_yaml_syntax => "syntax.yaml",
    bad_empty_file => "empty.yaml",
    bad_not_yaml => "not-yaml.yaml",
    bad_unknown_workspace => "unknown-workspace.yaml",
    bad_overflowing_durations => "overflow.yaml",
    bad_names_and_paths => "names.yaml",
    bad_stale_service_account_names => "stale-service-account-names.yaml",
}

/// v1alpha1 objects run as Tekton's conversion read them: `inputs.params` are params (and
/// `$(inputs.params.x)` still resolves), PipelineResources are dropped with a warning,
/// `serviceAccountNames` become `taskRunSpecs`.
#[test]
fn v1alpha1_objects_are_converted_and_run() {
    let home = tempfile::tempdir().expect("tempdir");
    let file = fixtures().join("v1alpha1/pipelinerun.yaml");
    let out = slipway(
        home.path(),
        &["run", "-f", &file.to_string_lossy(), "--logs", "-o", "json"],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("hello tekton and tekton"), "{stderr}");
    assert!(stderr.contains("hello alpha and alpha"), "{stderr}");
    assert!(
        stderr.contains("`spec.inputs.resources` (PipelineResources) was removed"),
        "{stderr}"
    );
    let runs = objects(&out);
    assert_eq!(runs.len(), 2);
    assert_eq!(
        runs[0]["spec"]["taskRunSpecs"][0]["serviceAccountName"],
        "greeter"
    );
}

/// Values of flags and of the config file out of range are usage errors (exit 2), not panics.
#[test]
fn flags_and_config_values_out_of_range_are_invalid_input() {
    let home = tempfile::tempdir().expect("tempdir");
    let file = fixtures().join("bad/names.yaml");
    let file = file.to_string_lossy();
    for args in [
        vec!["serve", "--grace", "99999999999999999h"],
        vec!["serve", "--max-runs", "0"],
        vec!["run", "-f", &file, "--concurrency", "18446744073709551615"],
    ] {
        let out = slipway(home.path(), &args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("out of range") || stderr.contains("longer than"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let config = home.path().join("config.toml");
    std::fs::write(&config, "[server]\nmax_runs = 18446744073709551615\n").expect("config");
    let out = slipway(
        home.path(),
        &[
            "--config",
            &config.to_string_lossy(),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:2:12:", config.display())) && stderr.contains("out of range"),
        "{stderr}"
    );
}

#[test]
fn a_directory_without_runs_is_invalid_input_for_run() {
    let home = tempfile::tempdir().expect("tempdir");
    let dir = fixtures().join("bad/no-runs");
    let out = slipway(home.path(), &["run", "-f", &dir.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr).replace(&dir.to_string_lossy().into_owned(), "<dir>");
    insta::assert_snapshot!(stderr);
}

/// A failure of slipway's own (here: a data directory that is a file) exits with 3, which
/// scripts can tell from a failed run (1) and from invalid input (2).
#[test]
fn an_unusable_data_directory_is_an_internal_error_with_its_own_exit_code() {
    let home = tempfile::tempdir().expect("tempdir");
    let file = home.path().join("not-a-dir");
    std::fs::write(&file, "x").expect("write");
    let out = slipway(&file, &["runs"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).starts_with("error: failed to open the run database"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_whole_catalog_validates() {
    let home = tempfile::tempdir().expect("tempdir");
    let dir = examples().join("../tekton-catalog");
    let out = slipway(home.path(), &["validate", &dir.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "valid: 300 Tasks");
}

#[test]
fn logs_follow_returns_every_line_once_the_run_ends() {
    let home = tempfile::tempdir().expect("tempdir");
    let file = fixtures().join("slow-with-finally.yaml");
    let mut run = spawn(
        home.path(),
        &["run", "-f", &file.to_string_lossy(), "--plain"],
    );
    wait_for_log(home.path(), "slow-with-finally", "started-slow", &mut run);
    let follow = spawn(home.path(), &["logs", "slow-with-finally", "-f"]);
    std::thread::sleep(Duration::from_millis(300));
    let c = slipway(home.path(), &["cancel", "slow-with-finally"]);
    assert_eq!(c.status.code(), Some(0));
    let followed = follow
        .wait_with_output()
        .expect("logs -f ends with the run");
    let _ = run.wait_with_output();
    let lines = text(&followed.stdout);
    assert_eq!(
        lines.matches("[slow/wait] started-slow").count(),
        1,
        "{lines}"
    );
    assert!(
        lines.contains("[cleanup/say] finally-ran-Failed"),
        "{lines}"
    );
}

#[test]
fn interrupting_stops_the_runs_queued_after_it() {
    let home = tempfile::tempdir().expect("tempdir");
    let slow = fixtures().join("slow-with-finally.yaml");
    let next = fixtures().join("failing.yaml");
    let mut child = spawn(
        home.path(),
        &[
            "run",
            "-f",
            &slow.to_string_lossy(),
            "-f",
            &next.to_string_lossy(),
            "--plain",
        ],
    );
    wait_for_log(home.path(), "slow-with-finally", "started-slow", &mut child);
    // SAFETY: sending SIGINT to the child we started, as Ctrl-C would.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().expect("run ends");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not starting the 1 remaining run(s): interrupted"),
        "{}",
        text(&out.stderr)
    );
    let listed = text(&slipway(home.path(), &["runs"]).stdout);
    assert!(!listed.contains("fails-after-output"), "{listed}");
}

#[test]
fn steps_whose_when_is_false_are_skipped() {
    let home = tempfile::tempdir().expect("tempdir");
    let (out, objs) = run_json(home.path(), &fixtures().join("step-when.yaml"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let steps = objs[0]["status"]["steps"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let reasons: Vec<&str> = steps
        .iter()
        .map(|s| s["terminated"]["reason"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(reasons, ["Skipped", "Skipped", "Completed"]);
    let logs = text(&slipway(home.path(), &["logs", "step-when"]).stdout);
    assert_eq!(logs.trim(), "[step-when/always] ran-always");
}

/// Replaces what changes between runs (generated names, uids, durations, ages) and column padding.
fn normalize(text: &str, name: &str, uid: &str) -> String {
    let is_duration = |w: &str| {
        let digits = w.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        !digits.is_empty()
            && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
            && ["ms", "s", "m", "h"].iter().any(|u| w.ends_with(u))
    };
    text.replace(name, "<run>")
        .replace(uid, "<uid>")
        .lines()
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let mut out = Vec::new();
            let mut k = 0;
            while k < words.len() {
                if words.get(k + 1) == Some(&"ago") {
                    out.push("<age>".to_string());
                    k += 2;
                    continue;
                }
                out.push(if is_duration(words[k]) {
                    "<dur>".to_string()
                } else {
                    words[k].to_string()
                });
                k += 1;
            }
            let indent = if l.starts_with("  ") { "  " } else { "" };
            format!("{indent}{}", out.join(" "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn describe_shows_tasks_steps_results_and_skips() {
    let home = tempfile::tempdir().expect("tempdir");
    // Sequential tasks only: parallel ones may start in either order.
    let (_, objs) = run_json(home.path(), &fixtures().join("describe-me.yaml"));
    let name = objs[0]["metadata"]["name"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let uid = objs[0]["metadata"]["uid"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let out = slipway(home.path(), &["describe", &name]);
    assert_eq!(out.status.code(), Some(0));
    insta::assert_snapshot!(normalize(&text(&out.stdout), &name, &uid));
}

#[test]
fn step_results_flow_into_later_steps() {
    let home = tempfile::tempdir().expect("tempdir");
    let (out, objs) = run_json(home.path(), &fixtures().join("step-results.yaml"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(result(&objs[0], "final"), "hello-made-made");
    let logs = text(&slipway(home.path(), &["logs", "step-results"]).stdout);
    assert!(
        logs.contains("[step-results/use] consumed hello-made-made"),
        "{logs}"
    );
    assert!(
        logs.contains("[step-results/inline] inline saw hello-made"),
        "{logs}"
    );
}

/// Commands started together on a new data directory (a run beside `logs -f`) all open it.
/// A stress check: the lock race it guards against was seen under full-suite load, and does not
/// reproduce on demand.
#[test]
fn processes_opening_a_new_database_together_all_succeed() {
    for _ in 0..5 {
        let home = tempfile::tempdir().expect("tempdir");
        let children: Vec<Child> = (0..8).map(|_| spawn(home.path(), &["runs"])).collect();
        for c in children {
            let out = c.wait_with_output().expect("runs ends");
            assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        }
    }
}

/// `slipway serve` over a history that `slipway run` wrote: Tekton-shaped reads and logs over a
/// real socket; SIGTERM stops it cleanly.
#[test]
fn serve_reads_the_history_over_http() {
    use std::io::{Read, Write};
    let home = tempfile::tempdir().expect("tempdir");
    let (out, objs) = run_json(home.path(), &fixtures().join("step-results.yaml"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let name = objs[0]["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    let kind = objs[0]["kind"].as_str().expect("kind").to_lowercase() + "s";
    let served = server::Served::spawned(
        home.path(),
        spawn(home.path(), &["serve", "--listen", "127.0.0.1:0"]),
    );
    let addr = served.url.trim_start_matches("http://").to_string();
    let token = served.token.clone().expect("the first start's admin token");
    let get = |path: &str| -> (String, String) {
        let mut s = std::net::TcpStream::connect(&addr).expect("connect");
        write!(
            s,
            "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n"
        )
        .expect("request");
        let mut response = String::new();
        s.read_to_string(&mut response).expect("response");
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        (
            head.lines().next().unwrap_or_default().to_string(),
            body.to_string(),
        )
    };
    let (status, body) = get(&format!(
        "/apis/tekton.dev/v1/namespaces/default/{kind}/{name}"
    ));
    assert!(status.contains("200"), "{status}\n{body}");
    let o: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(o["metadata"]["name"], name.as_str());
    assert_eq!(condition(&o).0, "True");
    let (status, logs) = get(&format!("/api/v1/runs/{name}/logs"));
    assert!(status.contains("200"), "{status}");
    let stored = slipway(home.path(), &["logs", &name]);
    assert_eq!(
        logs,
        text(&stored.stdout),
        "the API and `slipway logs` agree"
    );
    assert_eq!(served.terminate().code(), Some(0));
}

#[test]
fn secret_values_are_masked_in_logs_objects_and_the_api() {
    let home = tempfile::tempdir().expect("tempdir");
    let (out, objs) = run_json(home.path(), &fixtures().join("secrets.yaml"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let logs = text(&slipway(home.path(), &["logs", "leaky-run"]).stdout);
    assert_eq!(
        logs,
        "[leaky-run/print] file: [MASKED]\n[leaky-run/print] env: [MASKED]\n[leaky-run/print] param: [MASKED] user: alice\n"
    );
    let printed = objs[0].to_string();
    for secret in ["tok-7f3a9c1e", "hunter2-pw"] {
        assert!(
            !printed.contains(secret),
            "-o json shows {secret}: {printed}"
        );
    }
    assert_eq!(result(&objs[0], "echoed"), "[MASKED]");
    let described = text(&slipway(home.path(), &["describe", "leaky-run", "-o", "json"]).stdout);
    assert!(
        !described.contains("hunter2-pw") && described.contains("[MASKED]"),
        "{described}"
    );
}

/// Two runs in one file print one JSON document, a `List`, as kubectl does; one run prints the
/// object alone.
#[test]
fn json_output_of_several_runs_is_one_list() {
    let home = tempfile::tempdir().expect("tempdir");
    let file = home.path().join("two.yaml");
    let run = |name: &str| {
        format!(
            "apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata:\n  name: {name}\nspec:\n  taskSpec:\n    steps:\n    - image: busybox\n      script: echo {name}\n"
        )
    };
    std::fs::write(&file, format!("{}---\n{}", run("first"), run("second"))).expect("write");
    let out = slipway(
        home.path(),
        &["run", "-f", &file.to_string_lossy(), "-o", "json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(v["kind"], "List");
    let names: Vec<&str> = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["first", "second"]);

    std::fs::write(&file, run("alone")).expect("write");
    let out = slipway(
        home.path(),
        &["run", "-f", &file.to_string_lossy(), "-o", "json"],
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(v["kind"], "TaskRun");
}

/// A TaskRun that cannot start inside a PipelineRun says why in the live view, the run's last
/// line and `describe`; `describe` and `logs` take the names they print (a TaskRun's own name,
/// a matrix child's `test-0`); an unknown `-t` or `-s` is an error listing what exists.
#[test]
fn a_failing_child_says_why_and_every_printed_name_is_accepted() {
    let home = tempfile::tempdir().expect("tempdir");
    let file = fixtures().join("failure-cause.yaml");
    let out = slipway(
        home.path(),
        &["run", "-f", &file.to_string_lossy(), "--plain"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let live = text(&out.stdout);
    let why = "Secret `dockersecret` not found; load it with -f";
    assert!(
        live.lines()
            .any(|l| l.starts_with("[deploy] CreateContainerConfigError in ")
                && l.ends_with(&format!(": {why}"))),
        "{live}"
    );
    assert!(
        live.contains(&format!(
            "first failure: deploy: CreateContainerConfigError: {why}"
        )),
        "{live}"
    );
    let describe = text(&slipway(home.path(), &["describe", "why-it-failed"]).stdout);
    assert!(
        describe.contains(&format!(
            "Failures\n  deploy: CreateContainerConfigError: {why}"
        )),
        "{describe}"
    );
    assert!(
        describe.contains("why-it-failed-test-1   test-1"),
        "{describe}"
    );
    let child = slipway(home.path(), &["describe", "why-it-failed-deploy"]);
    assert_eq!(child.status.code(), Some(0), "{}", text(&child.stderr));
    let child = text(&child.stdout);
    assert!(
        child.contains("Kind:      TaskRun") && child.contains(why),
        "{child}"
    );
    // It failed before its step started: the step is listed, as never started and why.
    assert!(
        child.contains("deploy/push  not started (CreateContainerConfigError)"),
        "{child}"
    );
    let one = slipway(home.path(), &["logs", "why-it-failed", "-t", "test-0"]);
    assert_eq!(text(&one.stdout), "[test-0/echo] shard a\n");
    // The two children run at once: their lines come in the order they were written.
    let both = text(&slipway(home.path(), &["logs", "why-it-failed", "-t", "test"]).stdout);
    let mut lines: Vec<&str> = both.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["[test-0/echo] shard a", "[test-1/echo] shard b"]);
    let by_name = slipway(home.path(), &["logs", "why-it-failed-test-1"]);
    assert_eq!(text(&by_name.stdout), "[test-1/echo] shard b\n");
    let unknown = slipway(home.path(), &["logs", "why-it-failed", "-t", "nosuch"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        text(&unknown.stderr).contains("its tasks: deploy, test-0, test-1"),
        "{}",
        text(&unknown.stderr)
    );
    let step = slipway(
        home.path(),
        &["logs", "why-it-failed", "-t", "test", "-s", "nope"],
    );
    assert_eq!(step.status.code(), Some(2));
    assert!(
        text(&step.stderr).contains("its steps: echo"),
        "{}",
        text(&step.stderr)
    );
}

/// `slipway images` lists what a closed network must mirror: every image of the runs in the
/// files, once, after param defaults and run values, with matrix values expanded.
#[test]
fn images_lists_every_image_the_runs_need() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = slipway(
        home.path(),
        &["images", "-f", &examples().to_string_lossy()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let listed: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    let mut sorted = listed.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(listed, sorted, "sorted, once each");
    for image in [
        "mirror.gcr.io/alpine",
        "mirror.gcr.io/bash",
        "mirror.gcr.io/busybox",
        "mirror.gcr.io/ubuntu",
    ] {
        assert!(
            listed.iter().any(|l| l == image),
            "{image} missing: {listed:?}"
        );
    }
    assert!(listed.iter().all(|l| !l.contains("$(")), "{listed:?}");
    let wide = slipway(
        home.path(),
        &[
            "images",
            "-f",
            &fixtures().join("failure-cause.yaml").to_string_lossy(),
            "--wide",
        ],
    );
    assert_eq!(
        text(&wide.stdout),
        "busybox\tPipelineRun why-it-failed, task deploy, step push; \
         PipelineRun why-it-failed, task test, step echo\n"
    );
}

/// A reference Tekton would leave as written (a misspelt old-style param) is valid, as in
/// Tekton, but `validate` and `run` warn where it is.
#[test]
fn references_that_name_nothing_are_warned_about() {
    let home = tempfile::tempdir().expect("tempdir");
    let file = home.path().join("typo.yaml");
    std::fs::write(
        &file,
        "apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata: {name: typo}\nspec:\n  taskSpec:\n    params: [{name: who, default: x}]\n    steps:\n    - image: busybox\n      script: echo $(inputs.params.whom)\n",
    )
    .expect("write");
    let out = slipway(home.path(), &["validate", &file.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = slipway(home.path(), &["run", "-f", &file.to_string_lossy()]);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "`$(inputs.params.whom)` will be left as written: no param `whom` is declared"
        ),
        "{stderr}"
    );
}

/// The host executor honours sidecar readiness probes: a sidecar that stops before its probe
/// passes fails the TaskRun, and its steps are listed as never started.
#[test]
fn host_steps_wait_for_sidecar_readiness() {
    let home = tempfile::tempdir().expect("tempdir");
    let file = fixtures().join("sidecar-never-ready.yaml");
    let out = slipway(
        home.path(),
        &["run", "-f", &file.to_string_lossy(), "-o", "json", "--logs"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let o = objects(&out).pop().expect("object");
    assert_eq!(condition(&o), ("False".into(), "Failed".into()));
    let message = o["status"]["conditions"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.starts_with("sidecar `flaky` stopped before it was ready (last probe: `sh -c test -f /tekton/home/never` exited with"),
        "{message}"
    );
    assert!(!text(&out.stderr).contains("should not run"));
    assert_eq!(o["status"]["steps"][0]["waiting"]["reason"], "Failed");
}
