//! Integration tests of the model: the real conformance corpora and bad input.

use std::path::{Path, PathBuf};

use slipway_model::validate::{Limits, validate};
use slipway_model::{Diagnostics, Library};

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance")
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("read {}: {e}", d.display())) {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn check(path: &Path) -> Result<Library, Diagnostics> {
    let lib = Library::load_paths(&[path])?;
    let diags = validate(&lib, &Limits::default());
    diags.into_result(lib)
}

#[test]
fn every_catalog_task_is_valid() {
    let files = yaml_files(&shared().join("tekton-catalog"));
    assert_eq!(files.len(), 300, "the catalog corpus has 300 Tasks");
    let mut failures = Vec::new();
    let mut tasks = 0;
    for f in &files {
        match check(f) {
            Ok(lib) => tasks += lib.tasks.len(),
            Err(d) => failures.push(d.render_plain()),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} catalog files rejected:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    assert_eq!(tasks, 300);
}

#[test]
fn every_conformance_example_is_valid() {
    let files = yaml_files(&shared().join("tekton-examples"));
    assert_eq!(files.len(), 40);
    let mut failures = Vec::new();
    for f in &files {
        match check(f) {
            Ok(lib) => assert!(!lib.runs.is_empty(), "{} has a run", f.display()),
            Err(d) => failures.push(d.render_plain()),
        }
    }
    assert!(
        failures.is_empty(),
        "examples rejected:\n{}",
        failures.join("\n")
    );
}
