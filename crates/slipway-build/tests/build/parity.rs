//! The same Dockerfile and context built by Debian's `docker build` (the classic builder) and
//! by slipway's builder must give the same file system and config.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::flatten::{differences, flatten};
use crate::harness::{build_to_tar, docker};

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(name)
}

/// Builds `name` both ways and compares.
async fn same_as_docker(name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let dir = corpus(name);
    let tmp = tempfile::tempdir()?;
    let tag = format!("slipway-parity/{name}:{:x}", fastrand::u64(..));
    let status = docker()
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-q", "-t", &tag, "-f"])
        .arg(dir.join("Dockerfile"))
        .arg(&dir)
        .status()?;
    assert!(status.success(), "docker build of {name} failed");
    let docker_tar = tmp.path().join("docker.tar");
    let saved = docker()
        .args(["save", "-o"])
        .arg(&docker_tar)
        .arg(&tag)
        .status()?;
    let _ = docker().args(["rmi", "-f", &tag]).output();
    assert!(saved.success(), "docker save failed");
    let ours = tmp.path().join("slipway.tar");
    build_to_tar(&dir, &ours, tmp.path()).await?;
    let (theirs, mine) = (flatten(&docker_tar)?, flatten(&ours)?);
    // An empty tree on both sides would compare equal and prove nothing.
    assert!(
        theirs.files.len() > 10,
        "docker's image of {name} has {} paths",
        theirs.files.len()
    );
    eprintln!("{name}: {} paths compared", theirs.files.len());
    let diffs = differences(&theirs, &mine);
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
    Ok(())
}

macro_rules! parity {
    ($($test:ident => $name:literal),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread")]
        async fn $test() -> Result<(), Box<dyn std::error::Error>> {
            same_as_docker($name).await
        }
    )*};
}

parity! {
    basics_match_docker_build => "basics",
    whiteouts_and_opaque_directories_match_docker_build => "whiteouts",
    symlinks_and_hardlinks_match_docker_build => "links",
    multi_stage_builds_match_docker_build => "multistage",
    dockerignore_matches_docker_build => "dockerignore",
    ownership_and_modes_match_docker_build => "ownership",
    add_of_archives_matches_docker_build => "add-archive",
    build_args_match_docker_build => "args",
    onbuild_triggers_match_docker_build => "onbuild",
}

#[test]
fn the_corpus_is_whole_in_git() {
    // Files the repository's ignore rules would drop would make CI differ from here.
    let out = Command::new("git")
        .args(["status", "--porcelain", "--ignored", "tests/corpus"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    if let Ok(out) = out {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            !text.lines().any(|l| l.starts_with("!!")),
            "ignored corpus files:\n{text}"
        );
    }
}

#[test]
fn a_changed_mode_owner_or_config_is_reported() {
    use crate::flatten::{Entry, Flat};
    let file = Entry {
        kind: "file",
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: 1,
        sha256: "aa".into(),
        link: String::new(),
    };
    let base = || Flat {
        files: [("/a".to_string(), file.clone())].into(),
        config: serde_json::json!({"config": {"Cmd": ["sh"]}}),
    };
    assert!(differences(&base(), &base()).is_empty());
    let mut other = base();
    if let Some(e) = other.files.get_mut("/a") {
        e.mode = 0o755;
    }
    other.files.insert("/b".into(), file.clone());
    other.config["config"]["Cmd"] = serde_json::json!(["bash"]);
    let diffs = differences(&base(), &other);
    assert_eq!(diffs.len(), 3, "{diffs:?}");
}
