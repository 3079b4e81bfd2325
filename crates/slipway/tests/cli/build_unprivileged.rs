//! `slipway build` in an unprivileged container of the test daemon (no `--privileged`, so no
//! overlay mounts): the Kaniko-style mode takes over, says so once, and gives the file system
//! and config `docker build` gives; Docker loads and runs the result.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::build::{corpus, docker};
use super::{bin, text};

#[path = "../../../slipway-build/tests/build/flatten.rs"]
mod flatten;

const IMAGE: &str = "127.0.0.1:5000/library/ubuntu:latest";

const NOTICE: &str = "note: overlay mounts are not allowed here: running RUN in this container's own root, as Kaniko does";

/// What a builder image carries: the binary, the libraries it links (the test image has no
/// glibc) and CA certificates, as Kaniko's image carries its own.
fn kit(dir: &Path) -> PathBuf {
    let kit = dir.join("kit");
    std::fs::create_dir_all(&kit).expect("kit dir");
    std::fs::copy(bin(), kit.join("slipway")).expect("copy slipway");
    let ldd = std::process::Command::new("ldd")
        .arg(bin())
        .output()
        .expect("ldd runs");
    for lib in text(&ldd.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
    {
        let name = Path::new(lib).file_name().expect("a library name");
        std::fs::copy(lib, kit.join(name)).expect("copy a library");
    }
    std::fs::copy(
        "/etc/ssl/certs/ca-certificates.crt",
        kit.join("ca-certificates.crt"),
    )
    .expect("copy CA certificates");
    kit
}

/// `docker build` (the classic builder) of `ctx`, saved as an archive.
fn docker_build(ctx: &Path, dir: &Path, name: &str) -> PathBuf {
    let tag = format!("slipway-unpriv-ref/{name}:{:x}", fastrand::u64(..));
    let out = std::process::Command::new("docker")
        .env("DOCKER_HOST", "unix:///tmp/slipway-docker/docker.sock")
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-q", "-t", &tag])
        .arg(ctx)
        .output()
        .expect("docker build runs");
    assert!(out.status.success(), "docker build: {}", text(&out.stderr));
    let archive = dir.join("docker.tar");
    let saved = docker(&["save", "-o", archive.to_str().expect("utf-8"), &tag]);
    let _ = docker(&["rmi", "-f", &tag]);
    assert!(saved.status.success(), "{}", text(&saved.stderr));
    archive
}

/// `slipway build` of `ctx` inside an unprivileged container; its stderr and the archive.
fn build_in_container(ctx: &Path, dir: &Path, tag: &str, extra: &[&str]) -> (String, PathBuf) {
    let kit = kit(dir);
    let out_dir = dir.join("out");
    std::fs::create_dir_all(&out_dir).expect("out dir");
    let mount = |host: &Path, at: &str, ro: bool| {
        format!("{}:{at}{}", host.display(), if ro { ":ro" } else { "" })
    };
    let (kit_m, ctx_m, out_m) = (
        mount(&kit, "/.slipway", true),
        mount(ctx, "/.ctx", true),
        mount(&out_dir, "/.out", false),
    );
    let mut args = vec![
        "run",
        "--rm",
        "--network",
        "host",
        "-e",
        "SSL_CERT_FILE=/.slipway/ca-certificates.crt",
        "-v",
        &kit_m,
        "-v",
        &ctx_m,
        "-v",
        &out_m,
        IMAGE,
        "/.slipway/ld-linux-x86-64.so.2",
        "--library-path",
        "/.slipway",
        "/.slipway/slipway",
        "build",
        "--context",
        "/.ctx",
        "--no-push",
        "--tar-path",
        "/.out/image.tar",
        "--destination",
        tag,
    ];
    args.extend_from_slice(extra);
    let started = Instant::now();
    let out = docker(&args);
    let stderr = text(&out.stderr);
    eprintln!(
        "unprivileged build of {}: {:.1}s",
        ctx.display(),
        started.elapsed().as_secs_f64()
    );
    assert!(out.status.success(), "the build failed:\n{stderr}");
    (stderr, out_dir.join("image.tar"))
}

/// Builds corpus `name` both ways, compares, and has Docker load and run the result.
fn same_as_docker(name: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = corpus(name);
    let reference = flatten::flatten(&docker_build(&ctx, dir.path(), name)).expect("flatten");
    let tag = format!("slipway-unpriv/{name}:{:x}", fastrand::u64(..));
    let (stderr, archive) = build_in_container(&ctx, dir.path(), &tag, &[]);
    assert_eq!(
        stderr.matches(NOTICE).count(),
        1,
        "the mode is said once:\n{stderr}"
    );
    let ours = flatten::flatten(&archive).expect("flatten ours");
    assert!(reference.files.len() > 10, "an empty tree proves nothing");
    let diffs = flatten::differences(&reference, &ours);
    assert!(
        diffs.is_empty(),
        "{name}: {} differences from docker build:\n{}",
        diffs.len(),
        diffs
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    let loaded = docker(&["load", "-i", archive.to_str().expect("utf-8")]);
    assert!(loaded.status.success(), "{}", text(&loaded.stderr));
    let ran = docker(&["run", "--rm", "--entrypoint", "/bin/sh", &tag, "-c", "ls /"]);
    let _ = docker(&["rmi", "-f", &tag]);
    assert!(ran.status.success(), "{}", text(&ran.stderr));
    assert!(text(&ran.stdout).contains("bin"), "{}", text(&ran.stdout));
}

macro_rules! unprivileged {
    ($($test:ident => $name:literal),* $(,)?) => {$(
        #[test]
        fn $test() {
            same_as_docker($name);
        }
    )*};
}

unprivileged! {
    unprivileged_basics_match_docker_build => "basics",
    unprivileged_whiteouts_match_docker_build => "whiteouts",
    unprivileged_links_match_docker_build => "links",
    unprivileged_multi_stage_builds_match_docker_build => "multistage",
    unprivileged_dockerignore_matches_docker_build => "dockerignore",
    unprivileged_ownership_matches_docker_build => "ownership",
    unprivileged_add_of_archives_matches_docker_build => "add-archive",
    unprivileged_build_args_match_docker_build => "args",
}

/// The image Docker runs does what its Dockerfile built: the multi-stage artifact runs.
#[test]
fn an_unprivileged_build_runs_under_docker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tag = format!("slipway-unpriv/run:{:x}", fastrand::u64(..));
    let (stderr, archive) = build_in_container(
        &corpus("multistage"),
        dir.path(),
        &tag,
        &["--mode", "unprivileged"],
    );
    assert!(
        !stderr.contains(NOTICE),
        "a forced mode is not a fallback:\n{stderr}"
    );
    let loaded = docker(&["load", "-i", archive.to_str().expect("utf-8")]);
    assert!(loaded.status.success(), "{}", text(&loaded.stderr));
    let ran = docker(&["run", "--rm", &tag]);
    let _ = docker(&["rmi", "-f", &tag]);
    assert_eq!(text(&ran.stdout).trim(), "built", "{}", text(&ran.stderr));
}

/// Forced into the privileged mode, an unprivileged container (no runc, no overlay mounts)
/// fails with a reason, not a panic.
#[test]
fn the_privileged_mode_in_an_unprivileged_container_says_why_it_cannot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kit = kit(dir.path());
    let ctx = corpus("args");
    let out = docker(&[
        "run",
        "--rm",
        "--network",
        "host",
        "-v",
        &format!("{}:/.slipway:ro", kit.display()),
        "-v",
        &format!("{}:/.ctx:ro", ctx.display()),
        IMAGE,
        "/.slipway/ld-linux-x86-64.so.2",
        "--library-path",
        "/.slipway",
        "/.slipway/slipway",
        "build",
        "--context",
        "/.ctx",
        "--no-push",
        "--mode",
        "privileged",
    ]);
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !out.status.success() && stderr.contains("error: failed to build"),
        "{stderr}"
    );
}
