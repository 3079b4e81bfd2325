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

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    fn load_and_validate(text: String) {
        let mut lib = Library::default();
        let mut diags = Diagnostics::default();
        lib.add_source("input.yaml".into(), text, &mut diags);
        for d in &diags.0 {
            assert!(d.pos.line >= 1, "every diagnostic has a line: {d}");
        }
        let _ = validate(&lib, &Limits::default());
    }

    fn corpus() -> Vec<String> {
        yaml_files(&shared().join("tekton-examples"))
            .iter()
            .map(|f| std::fs::read_to_string(f).expect("example"))
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn on_arbitrary_text(text in ".{0,400}") {
            load_and_validate(text);
        }

        #[test]
        fn on_mutated_tekton_files(file in 0usize..40, at in 0usize..4000, cut in 0usize..40, insert in "[ :\\-\\[\\]{}$()\"'#|>a-z0-9\n]{0,8}") {
            let corpus = corpus();
            let text = &corpus[file % corpus.len()];
            let mut start = at.min(text.len());
            while !text.is_char_boundary(start) {
                start -= 1;
            }
            let mut end = (start + cut).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            load_and_validate(format!("{}{}{}", &text[..start], insert, &text[end..]));
        }
    }
}
