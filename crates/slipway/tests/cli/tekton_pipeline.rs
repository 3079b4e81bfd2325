//! Tekton's own examples beyond the shared corpus (`conformance/tekton-pipeline`, taken from
//! tektoncd/pipeline under its Apache-2.0 license): each must reach Tekton's outcome, except
//! where `expected.txt` says otherwise and why.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use super::{condition, objects, run_all, text, yaml_files};

/// The corpus directory.
fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/tekton-pipeline")
}

/// `expected.txt`: per example, the outcome under each executor (`host`, `docker`).
fn expected() -> BTreeMap<String, [String; 2]> {
    let text = std::fs::read_to_string(corpus().join("expected.txt")).expect("expected.txt");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut words = l.split_whitespace();
            let mut next = || {
                words
                    .next()
                    .expect("path, host and docker outcomes")
                    .to_string()
            };
            let (path, host, docker) = (next(), next(), next());
            (path, [host, docker])
        })
        .collect()
}

/// What one run of an example came to: `ok`, `invalid` (exit 2), or the condition reason of the
/// first run that did not succeed.
fn outcome(out: &Output) -> String {
    if out.status.code() == Some(2) {
        return "invalid".into();
    }
    let objs = objects(out);
    if objs.is_empty() {
        return format!("no object printed (exit {:?})", out.status.code());
    }
    match objs
        .iter()
        .map(condition)
        .find(|(status, _)| status != "True")
    {
        Some((_, reason)) => reason,
        None if out.status.code() == Some(0) => "ok".into(),
        None => format!(
            "every run succeeded but the exit code is {:?}",
            out.status.code()
        ),
    }
}

/// Runs every example with `env` and compares with column `column` of `expected.txt`.
pub fn check(column: usize, env: &[(&str, &str)]) {
    let root = corpus().join("examples/v1");
    let mut files = Vec::new();
    yaml_files(&root, &mut files);
    files.sort();
    assert_eq!(files.len(), 80, "the corpus has 80 examples");
    let expected = expected();
    for path in expected.keys() {
        assert!(
            root.join(path).is_file(),
            "expected.txt names {path}, which is not in the corpus"
        );
    }
    let home = tempfile::tempdir().expect("tempdir");
    let results = run_all(home.path(), &files, &["-o", "json", "--plain"], env);
    let mut off = Vec::new();
    for (f, out) in &results {
        let name = f.strip_prefix(&root).unwrap_or(f).display().to_string();
        let want = expected.get(&name).map_or("ok", |e| e[column].as_str());
        let got = outcome(out);
        if got != want {
            let stderr = text(&out.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
            off.push(format!(
                "{name}: expected {want}, got {got}\n  {}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n  ")
            ));
        }
    }
    assert!(
        off.is_empty(),
        "{} example(s) off:\n{}",
        off.len(),
        off.join("\n")
    );
}

#[test]
fn tekton_pipeline_examples_under_the_host_executor() {
    check(0, &[]);
}
