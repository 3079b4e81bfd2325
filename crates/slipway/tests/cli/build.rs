//! `slipway build` end to end: Kaniko's flags, a push Docker then runs, the cache, reproducible
//! digests, located errors, and what an interrupted build leaves behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{bin, text};

const SOCK: &str = "/tmp/slipway-docker/docker.sock";

pub(super) fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../slipway-build/tests/corpus")
        .join(name)
}

pub(super) fn docker(args: &[&str]) -> Output {
    assert!(
        Path::new(SOCK).exists(),
        "the test Docker daemon is not running: run scripts/docker-env.sh first"
    );
    Command::new("docker")
        .env("DOCKER_HOST", format!("unix://{SOCK}"))
        .args(args)
        .output()
        .expect("docker runs")
}

/// `slipway build ARGS` with a private data directory.
fn build(home: &Path, args: &[&str]) -> Output {
    // Never the auto mode's fallback: it would rebuild this machine's own root.
    Command::new(bin())
        .args(["build", "--mode", "privileged"])
        .args(args)
        .env("SLIPWAY_HOME", home)
        .env("NO_COLOR", "1")
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .expect("slipway runs")
}

fn unique(name: &str) -> String {
    format!(
        "127.0.0.1:5000/slipway-test/{name}-{:x}:v1",
        fastrand::u64(..)
    )
}

#[test]
fn a_built_image_is_pushed_and_docker_runs_it() {
    let home = tempfile::tempdir().expect("tempdir");
    let image = unique("build");
    let digest_file = home.path().join("digest");
    let names = home.path().join("names");
    let ctx = corpus("multistage");
    let out = build(
        home.path(),
        &[
            "--context",
            ctx.to_str().expect("utf-8"),
            "--destination",
            &image,
            "--digest-file",
            digest_file.to_str().expect("utf-8"),
            "--image-name-with-digest-file",
            names.to_str().expect("utf-8"),
            "--cache-dir",
            home.path().join("cache").to_str().expect("utf-8"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let digest = std::fs::read_to_string(&digest_file).expect("digest file");
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    let repo = image.trim_end_matches(":v1");
    assert_eq!(
        std::fs::read_to_string(&names).expect("names file"),
        format!("{repo}@{digest}\n")
    );
    let pulled = docker(&["pull", "-q", &format!("{repo}@{digest}")]);
    assert!(pulled.status.success(), "{}", text(&pulled.stderr));
    let ran = docker(&["run", "--rm", &format!("{repo}@{digest}")]);
    assert_eq!(text(&ran.stdout).trim(), "built", "{}", text(&ran.stderr));
    let _ = docker(&["rmi", "-f", &format!("{repo}@{digest}")]);
    // containerd's own client reads it too (the daemon's containerd, its own namespace).
    let ctr = Command::new("ctr")
        .args([
            "--address",
            "/tmp/slipway-docker/exec/containerd/containerd.sock",
        ])
        .args([
            "-n",
            "slipway-build-test",
            "images",
            "pull",
            "--plain-http",
            &image,
        ])
        .output()
        .expect("ctr runs");
    assert!(ctr.status.success(), "{}", text(&ctr.stderr));
    let _ = Command::new("ctr")
        .args([
            "--address",
            "/tmp/slipway-docker/exec/containerd/containerd.sock",
        ])
        .args(["-n", "slipway-build-test", "images", "rm", &image])
        .output();
}

#[test]
fn an_unchanged_rebuild_runs_nothing_and_a_changed_file_reruns_what_follows() {
    let home = tempfile::tempdir().expect("tempdir");
    let ctx = home.path().join("ctx");
    std::fs::create_dir_all(&ctx).expect("ctx");
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM 127.0.0.1:5000/library/busybox:latest\nRUN echo first > /first\nCOPY app.txt /app.txt\nRUN cat /app.txt > /copy\n",
    )
    .expect("Dockerfile");
    std::fs::write(ctx.join("app.txt"), "v1").expect("app");
    let cache = home.path().join("cache");
    let args = [
        "-c",
        ctx.to_str().expect("utf-8"),
        "--no-push",
        "--cache-dir",
        cache.to_str().expect("utf-8"),
        "-o",
        "json",
    ];
    let cold = build(home.path(), &args);
    assert!(cold.status.success(), "{}", text(&cold.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&cold.stdout).expect("json");
    assert_eq!(summary["cached"], 0);
    let warm = build(home.path(), &args);
    let summary: serde_json::Value = serde_json::from_slice(&warm.stdout).expect("json");
    assert_eq!(
        (summary["steps"].as_u64(), summary["cached"].as_u64()),
        (Some(3), Some(3))
    );
    std::fs::write(ctx.join("app.txt"), "v2").expect("app");
    let changed = build(home.path(), &args);
    let summary: serde_json::Value = serde_json::from_slice(&changed.stdout).expect("json");
    // The RUN before the COPY stays cached; the COPY and the RUN after it run again.
    assert_eq!(summary["cached"], 1, "{}", text(&changed.stderr));
    assert!(
        text(&changed.stderr).contains("#1 CACHED"),
        "{}",
        text(&changed.stderr)
    );
}

#[test]
fn reproducible_builds_give_one_digest() {
    let home = tempfile::tempdir().expect("tempdir");
    let ctx = corpus("basics");
    let digest = |n: &str| {
        let file = home.path().join(format!("digest-{n}"));
        let out = build(
            home.path(),
            &[
                "-c",
                ctx.to_str().expect("utf-8"),
                "--no-push",
                "--reproducible",
                "--digest-file",
                file.to_str().expect("utf-8"),
                "--cache-dir",
                home.path()
                    .join(format!("cache-{n}"))
                    .to_str()
                    .expect("utf-8"),
            ],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        std::fs::read_to_string(file).expect("digest")
    };
    // Two cold builds in separate stores, a second apart: no time leaks into the image.
    let first = digest("a");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(first, digest("b"));
}

fn dockerfile(home: &Path, text: &str) -> PathBuf {
    let ctx = home.join("ctx");
    std::fs::create_dir_all(&ctx).expect("ctx");
    std::fs::write(ctx.join("Dockerfile"), text).expect("Dockerfile");
    ctx
}

#[test]
fn a_bad_dockerfile_is_located_and_exits_2() {
    let home = tempfile::tempdir().expect("tempdir");
    let ctx = dockerfile(
        home.path(),
        "FROM 127.0.0.1:5000/library/busybox\nRUNN echo hi\n",
    );
    let out = build(
        home.path(),
        &["-c", ctx.to_str().expect("utf-8"), "--no-push"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr).replace(ctx.to_str().expect("utf-8"), "CTX");
    insta::assert_snapshot!(err.trim());
}

#[test]
fn a_missing_copy_source_says_what_is_there_and_exits_2() {
    let home = tempfile::tempdir().expect("tempdir");
    let ctx = dockerfile(
        home.path(),
        "FROM 127.0.0.1:5000/library/busybox\nCOPY src/mian.rs /app/\n",
    );
    std::fs::create_dir_all(ctx.join("src")).expect("src");
    std::fs::write(ctx.join("src/main.rs"), "fn main() {}").expect("main");
    let out = build(
        home.path(),
        &["-c", ctx.to_str().expect("utf-8"), "--no-push"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("src/mian.rs") && err.contains("main.rs"),
        "{err}"
    );
    assert!(err.contains("Dockerfile:2"), "{err}");
}

#[test]
fn a_failing_run_gives_its_line_exit_code_and_last_lines() {
    let home = tempfile::tempdir().expect("tempdir");
    let ctx = dockerfile(
        home.path(),
        "FROM 127.0.0.1:5000/library/busybox\nRUN echo preparing && echo it broke >&2 && exit 3\n",
    );
    let out = build(
        home.path(),
        &["-c", ctx.to_str().expect("utf-8"), "--no-push"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("Dockerfile:2"), "{err}");
    assert!(err.contains("exit code 3"), "{err}");
    assert!(err.contains("it broke"), "{err}");
}

#[test]
fn a_missing_base_image_gives_the_registrys_words() {
    let home = tempfile::tempdir().expect("tempdir");
    let ctx = dockerfile(home.path(), "FROM 127.0.0.1:5000/library/no-such-image:1\n");
    let out = build(
        home.path(),
        &["-c", ctx.to_str().expect("utf-8"), "--no-push"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("no-such-image"), "{err}");
    assert!(
        err.to_lowercase().contains("unknown") || err.contains("404"),
        "{err}"
    );
}

/// Mounts below `dir`.
fn mounts_under(dir: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = dir.display().to_string();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&prefix))
        .map(str::to_string)
        .collect()
}

/// Processes whose command line contains `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                found.push(cmd);
            }
        }
    }
    found
}

/// Starts a privileged build of `ctx` on `cache` and returns once its RUN (a command line
/// holding `marker`) runs.
fn build_until_run(home: &Path, ctx: &Path, cache: &Path, marker: &str) -> std::process::Child {
    let child = Command::new(bin())
        .args(["build", "--mode", "privileged", "--no-push", "-c"])
        .arg(ctx)
        .arg("--cache-dir")
        .arg(cache)
        .env("SLIPWAY_HOME", home)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("slipway starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while processes_with(marker).is_empty() {
        assert!(Instant::now() < deadline, "the RUN never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

#[test]
fn a_killed_build_leaves_nothing_after_the_next_start() {
    let home = tempfile::tempdir().expect("tempdir");
    let marker = format!("sleep {}", 500 + fastrand::u32(..400));
    let ctx = dockerfile(
        home.path(),
        &format!("FROM 127.0.0.1:5000/library/busybox\nRUN echo started && {marker}\n"),
    );
    let cache = home.path().join("cache");
    let mut child = build_until_run(home.path(), &ctx, &cache, &marker);
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    // What SIGKILL leaves: the container's process and the overlay.
    assert!(
        !mounts_under(&cache).is_empty(),
        "expected a leftover mount to sweep"
    );
    let next = dockerfile(
        home.path(),
        "FROM 127.0.0.1:5000/library/busybox\nRUN true\n",
    );
    let out = build(
        home.path(),
        &[
            "--no-push",
            "-c",
            next.to_str().expect("utf-8"),
            "--cache-dir",
            cache.to_str().expect("utf-8"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(mounts_under(&cache), Vec::<String>::new());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_with(&marker).is_empty() {
        assert!(
            Instant::now() < deadline,
            "{:?} still runs",
            processes_with(&marker)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let tmp: Vec<_> = std::fs::read_dir(cache.join("tmp")).expect("tmp").collect();
    assert!(tmp.is_empty(), "{tmp:?}");
}

/// Two builds at once on one cache: the second one's start-up sweep (what killed builds left)
/// leaves the first one's running container and mount alone, and both finish.
#[test]
fn a_build_starting_while_another_runs_leaves_its_container_and_mount_alone() {
    let home = tempfile::tempdir().expect("tempdir");
    let marker = format!("sleep 3.{}", 100 + fastrand::u32(..800));
    let slow = dockerfile(
        home.path(),
        &format!("FROM 127.0.0.1:5000/library/busybox\nRUN {marker} && echo done > /done\n"),
    );
    let cache = home.path().join("cache");
    let first = build_until_run(home.path(), &slow, &cache, &marker);
    let quick = home.path().join("quick");
    std::fs::create_dir_all(&quick).expect("mkdir");
    std::fs::write(
        quick.join("Dockerfile"),
        "FROM 127.0.0.1:5000/library/busybox\nRUN true\n",
    )
    .expect("write");
    let second = build(
        home.path(),
        &[
            "--no-push",
            "-c",
            quick.to_str().expect("utf-8"),
            "--cache-dir",
            cache.to_str().expect("utf-8"),
        ],
    );
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(
        !processes_with(&marker).is_empty(),
        "the first build's RUN was killed by the second's start"
    );
    let first = first.wait_with_output().expect("the first build ends");
    assert!(first.status.success(), "{}", text(&first.stderr));
}

#[test]
fn kaniko_only_flags_are_accepted_and_said_to_do_nothing() {
    let home = tempfile::tempdir().expect("tempdir");
    let ctx = dockerfile(
        home.path(),
        "FROM 127.0.0.1:5000/library/busybox\nENV A=1\n",
    );
    let out = build(
        home.path(),
        &[
            "-c",
            ctx.to_str().expect("utf-8"),
            "--no-push",
            "--snapshot-mode=redo",
            "--use-new-run",
            "--compressed-caching=false",
            "--cache=true",
            "--cache-ttl=24h",
            "--verbosity=info",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("--snapshot-mode tunes Kaniko's snapshots"),
        "{err}"
    );
    assert!(err.contains("--use-new-run"), "{err}");
}

#[test]
fn no_destination_without_no_push_is_refused() {
    let home = tempfile::tempdir().expect("tempdir");
    let ctx = dockerfile(home.path(), "FROM 127.0.0.1:5000/library/busybox\n");
    let out = build(home.path(), &["-c", ctx.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--no-push"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_cache_repo_lets_another_machine_skip_the_work() {
    let home = tempfile::tempdir().expect("tempdir");
    let ctx = dockerfile(
        home.path(),
        "FROM 127.0.0.1:5000/library/busybox\nRUN echo slow > /slow\nCOPY Dockerfile /copied\n",
    );
    let repo = format!("127.0.0.1:5000/slipway-test/cache-{:x}", fastrand::u64(..));
    let run = |store: &str| {
        let out = build(
            home.path(),
            &[
                "-c",
                ctx.to_str().expect("utf-8"),
                "--no-push",
                "--cache-repo",
                &repo,
                "--cache-dir",
                home.path().join(store).to_str().expect("utf-8"),
                "-o",
                "json",
            ],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        (
            v["cached"].as_u64(),
            v["digest"].as_str().map(str::to_string),
        )
    };
    assert_eq!(run("first").0, Some(0));
    // A second store, as on another machine: both steps come from the registry.
    assert_eq!(run("second").0, Some(2));
}
