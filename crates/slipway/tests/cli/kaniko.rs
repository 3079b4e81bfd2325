//! Tekton steps that run Kaniko's executor image, done by slipway's own builder: the catalog's
//! `kaniko` Task unchanged, an inline Task, a broken Dockerfile, and the example pipeline that
//! clones, tests, builds and pushes. Against the local registry and Docker daemon that
//! `scripts/docker-env.sh` starts.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use super::{condition, objects, slipway_with, text};

const SOCK: &str = "/tmp/slipway-docker/docker.sock";

/// The catalog's bash pin, which the test environment's config sends to the local copy.
const BASH_RULE: &str = "docker.io/library/bash@sha256:c523c636b722339f41b6a431b44588ab2f762c5de5ec3bd7964420ff982fb1d9";

fn catalog_task() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/tekton-catalog/kaniko/0.6/kaniko.yaml")
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/kaniko-build.yaml")
}

/// The test environment's config, with the rule for the catalog's bash pin even when another
/// checkout of `scripts/docker-env.sh` wrote the shared file.
fn config(home: &Path) -> PathBuf {
    let shared = &super::docker::env().docker.config;
    let mut toml = std::fs::read_to_string(shared).expect("config");
    if !toml.contains(BASH_RULE) {
        toml = toml.replacen(
            "[registry.mirrors]",
            &format!(
                "[[registry.rewrite]]\nprefix = \"{BASH_RULE}\"\nreplace = \"127.0.0.1:5000/library/bash:latest\"\ndrop_digest = true\n\n[registry.mirrors]"
            ),
            1,
        );
    }
    let path = home.join("slipway.toml");
    std::fs::write(&path, toml).expect("write config");
    path
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .env("DOCKER_HOST", format!("unix://{SOCK}"))
        .args(args)
        .output()
        .expect("docker runs")
}

fn unique(name: &str) -> String {
    format!(
        "127.0.0.1:5000/slipway-test/{name}-{:x}:v1",
        fastrand::u64(..)
    )
}

/// The digest the registry serves for `image` (`REGISTRY/REPO:TAG`), as Docker asks for it.
fn served_digest(image: &str) -> String {
    let (repo, tag) = image.rsplit_once(':').expect("tag");
    let path = repo
        .strip_prefix("127.0.0.1:5000/")
        .expect("local registry");
    let out = Command::new("curl")
        .args([
            "-sfI",
            "-H",
            "Accept: application/vnd.docker.distribution.manifest.v2+json",
            &format!("http://127.0.0.1:5000/v2/{path}/manifests/{tag}"),
        ])
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "HEAD failed: {}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("docker-content-digest")
                .then(|| v.trim().to_string())
        })
        .expect("Docker-Content-Digest")
}

/// Pulls `image` and runs it; its output.
fn docker_run(image: &str) -> String {
    let pulled = docker(&["pull", "-q", image]);
    assert!(pulled.status.success(), "{}", text(&pulled.stderr));
    let ran = docker(&["run", "--rm", "--network", "none", image]);
    let _ = docker(&["rmi", "-f", image]);
    assert!(ran.status.success(), "{}", text(&ran.stderr));
    text(&ran.stdout)
}

/// `slipway run -f FILES -o json --plain --logs` with the test config on `executor`.
fn run(home: &Path, executor: &str, files: &[&Path], extra: &[&str]) -> (Output, Value) {
    let config = config(home);
    let mut args = vec!["run"];
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    for f in &names {
        args.extend(["-f", f.as_str()]);
    }
    args.extend(["-o", "json", "--plain", "--logs"]);
    args.extend(extra);
    let out = slipway_with(
        home,
        &args,
        &[
            ("SLIPWAY_CONFIG", &config.to_string_lossy()),
            ("SLIPWAY_EXECUTOR", executor),
        ],
    );
    let mut objs = objects(&out);
    assert_eq!(objs.len(), 1, "{}", text(&out.stderr));
    (out, objs.remove(0))
}

fn result(o: &Value, name: &str) -> String {
    o["status"]["results"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["name"] == name)
        .and_then(|r| r["value"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// A claim of the data directory holding a Dockerfile and what it copies.
fn source_claim(home: &Path, name: &str, dockerfile: &str) {
    let dir = home.join("claims").join(name);
    std::fs::create_dir_all(&dir).expect("claim");
    std::fs::write(dir.join("Dockerfile"), dockerfile).expect("Dockerfile");
    std::fs::write(dir.join("hello.txt"), "hello from kaniko\n").expect("hello");
}

const DOCKERFILE: &str = "FROM busybox\nCOPY hello.txt /hello.txt\nRUN cp /hello.txt /copied.txt\nCMD [\"cat\", \"/copied.txt\"]\n";

fn catalog_task_builds_pushes_and_reports(executor: &str) {
    let home = tempfile::tempdir().expect("tempdir");
    source_claim(home.path(), "app-source", DOCKERFILE);
    let image = unique(&format!("kaniko-catalog-{executor}"));
    let taskrun = home.path().join("taskrun.yaml");
    std::fs::write(
        &taskrun,
        format!(
            "apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata:\n  name: kaniko-catalog\nspec:\n  taskRef:\n    name: kaniko\n  params:\n    - name: IMAGE\n      value: {image}\n  workspaces:\n    - name: source\n      persistentVolumeClaim:\n        claimName: app-source\n"
        ),
    )
    .expect("taskrun");
    let (out, o) = run(home.path(), executor, &[&taskrun, &catalog_task()], &[]);
    let log = text(&out.stderr);
    assert_eq!(
        condition(&o),
        ("True".into(), "Succeeded".into()),
        "{executor}: {log}"
    );
    let note =
        "note: slipway's builder stands in for gcr.io/kaniko-project/executor:v1.5.1@sha256:";
    assert_eq!(log.matches(note).count(), 1, "{log}");
    let digest = result(&o, "IMAGE_DIGEST");
    assert_eq!(digest, served_digest(&image), "{log}");
    assert_eq!(result(&o, "IMAGE_URL"), image);
    let repo = image.trim_end_matches(":v1");
    assert_eq!(
        docker_run(&format!("{repo}@{digest}")),
        "hello from kaniko\n"
    );
}

#[test]
fn kaniko_catalog_task_on_the_host_executor() {
    catalog_task_builds_pushes_and_reports("host");
}

#[test]
fn kaniko_catalog_task_on_the_docker_executor() {
    catalog_task_builds_pushes_and_reports("docker");
}

/// A Task written as users write one: the executor's `latest`, flags only.
fn inline_task(image: &str) -> String {
    format!(
        r#"apiVersion: tekton.dev/v1
kind: TaskRun
metadata:
  name: kaniko-inline
spec:
  workspaces:
    - name: source
      persistentVolumeClaim:
        claimName: inline-source
  taskSpec:
    workspaces:
      - name: source
    results:
      - name: IMAGE_DIGEST
    steps:
      - name: build
        image: gcr.io/kaniko-project/executor:latest
        args:
          - --context=$(workspaces.source.path)
          - --destination={image}
          - --digest-file=$(results.IMAGE_DIGEST.path)
"#
    )
}

#[test]
fn kaniko_inline_task_on_both_executors() {
    for executor in ["host", "docker"] {
        let home = tempfile::tempdir().expect("tempdir");
        source_claim(home.path(), "inline-source", DOCKERFILE);
        let image = unique("kaniko-inline");
        let file = home.path().join("run.yaml");
        std::fs::write(&file, inline_task(&image)).expect("write");
        let (out, o) = run(home.path(), executor, &[&file], &[]);
        assert_eq!(
            condition(&o),
            ("True".into(), "Succeeded".into()),
            "{executor}: {}",
            text(&out.stderr)
        );
        assert_eq!(result(&o, "IMAGE_DIGEST"), served_digest(&image));
    }
}

#[test]
fn kaniko_bad_dockerfile_fails_the_step_with_the_located_error() {
    for executor in ["host", "docker"] {
        let home = tempfile::tempdir().expect("tempdir");
        source_claim(home.path(), "inline-source", "FROM busybox\nFROBNICATE x\n");
        let file = home.path().join("run.yaml");
        std::fs::write(&file, inline_task(&unique("kaniko-bad"))).expect("write");
        let (out, o) = run(home.path(), executor, &[&file], &[]);
        let log = text(&out.stderr);
        assert_eq!(
            condition(&o),
            ("False".into(), "Failed".into()),
            "{executor}: {log}"
        );
        let line = log
            .lines()
            .find(|l| l.contains("/build]") && l.contains("unknown instruction"))
            .unwrap_or_else(|| panic!("{executor}: no located error in {log}"));
        assert!(
            line.contains("Dockerfile:2:1: unknown instruction `FROBNICATE`"),
            "{line}"
        );
    }
}

#[test]
fn kaniko_outside_paths_are_refused_with_a_reason() {
    let home = tempfile::tempdir().expect("tempdir");
    source_claim(home.path(), "inline-source", DOCKERFILE);
    let file = home.path().join("run.yaml");
    let yaml = inline_task(&unique("kaniko-outside"))
        .replace("--context=$(workspaces.source.path)", "--context=/etc");
    std::fs::write(&file, yaml).expect("write");
    let (out, o) = run(home.path(), "docker", &[&file], &[]);
    assert_eq!(condition(&o).1, "Failed", "{}", text(&out.stderr));
    let message = o["status"]["conditions"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("`/etc` is outside the step's workspaces"),
        "{message}"
    );
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
}

/// A bare repository with a tiny app, its test script and a Dockerfile.
fn app_repository(dir: &Path) -> PathBuf {
    let work = dir.join("app");
    std::fs::create_dir_all(&work).expect("app dir");
    std::fs::write(
        work.join("app.sh"),
        "#!/bin/sh\necho \"app says ${1:-hi}\"\n",
    )
    .expect("app");
    std::fs::write(
        work.join("test.sh"),
        "set -e\nout=$(sh ./app.sh there)\n[ \"$out\" = \"app says there\" ] && echo PASS\n",
    )
    .expect("test");
    std::fs::write(
        work.join("Dockerfile"),
        "FROM busybox\nCOPY app.sh /app.sh\nRUN chmod 755 /app.sh\nENTRYPOINT [\"/app.sh\"]\n",
    )
    .expect("Dockerfile");
    git(&work, &["init", "-q", "-b", "main"]);
    git(&work, &["add", "."]);
    git(&work, &["commit", "-qm", "app"]);
    let bare = dir.join("app.git");
    git(
        dir,
        &["clone", "-q", "--bare", "app", &bare.to_string_lossy()],
    );
    bare
}

/// The example clones with the machine's git, so it runs on the host executor (no test image
/// holds git).
#[test]
fn kaniko_example_pipeline_clones_tests_builds_and_the_image_runs() {
    let home = tempfile::tempdir().expect("tempdir");
    let repo = app_repository(home.path());
    let image = unique("kaniko-example");
    let (out, o) = run(
        home.path(),
        "host",
        &[&example()],
        &[
            "-p",
            &format!("repo-url={}", repo.display()),
            "-p",
            &format!("image={image}"),
        ],
    );
    let log = text(&out.stderr);
    assert_eq!(condition(&o), ("True".into(), "Succeeded".into()), "{log}");
    assert!(log.contains("PASS"), "{log}");
    let digest = result(&o, "image-digest");
    assert_eq!(digest, served_digest(&image), "{log}");
    let repo_name = image.trim_end_matches(":v1");
    assert_eq!(
        docker_run(&format!("{repo_name}@{digest}")),
        "app says hi\n"
    );
}
