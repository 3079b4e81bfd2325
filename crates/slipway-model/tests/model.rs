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

/// Loads `text` as one file and validates it; the rendered diagnostics.
fn problems(text: &str) -> String {
    let mut lib = Library::default();
    let mut diags = Diagnostics::default();
    lib.add_source("input.yaml".into(), text.to_string(), &mut diags);
    assert!(diags.0.is_empty(), "loads: {}", diags.render_plain());
    validate(&lib, &Limits::default()).render_plain()
}

#[test]
fn durations_beyond_go_range_are_refused_with_positions() {
    let out = problems(
        r#"apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {name: big}
spec:
  timeout: 99999999999999999h
  taskSpec:
    steps:
      - name: s
        image: busybox
        timeout: 3000000000000000h
        script: "true"
---
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {name: big-p}
spec:
  timeouts: {pipeline: 2562047h47m16.854775808s, tasks: -1s}
  pipelineSpec:
    tasks:
      - name: t
        timeout: 9999999999999999999999999999s
        taskSpec: {steps: [{name: s, image: busybox, script: "true"}]}
"#,
    );
    for (at, value) in [
        ("input.yaml:5:3", "99999999999999999h"),
        ("input.yaml:10:9", "3000000000000000h"),
        ("input.yaml:17:14", "2562047h47m16.854775808s"),
        ("input.yaml:21:9", "9999999999999999999999999999s"),
    ] {
        assert!(
            out.contains(&format!(
                "{at}: invalid duration `{value}`: longer than the longest Go duration"
            )),
            "{at} {value}:\n{out}"
        );
    }
    assert!(out.contains("invalid duration `-1s`: negative"), "{out}");
    assert!(
        out.contains("hint: use at most 2562047h47m16.854775807s"),
        "{out}"
    );
}

#[test]
fn slipway_annotations_are_checked_with_positions() {
    let out = problems(
        r#"apiVersion: tekton.dev/v1
kind: Task
metadata:
  name: t
  annotations:
    slipway.dev/max-concurrent-runs: "99999999999999999999999"
spec: {steps: [{name: s, image: busybox, script: "true"}]}
---
apiVersion: tekton.dev/v1
kind: TaskRun
metadata:
  name: r
  annotations:
    slipway.dev/priority: "99999999999999999999"
spec: {taskRef: {name: t}}
"#,
    );
    assert!(
        out.contains("input.yaml:6:5: invalid annotation slipway.dev/max-concurrent-runs `99999999999999999999999`: out of range"),
        "{out}"
    );
    assert!(
        out.contains("input.yaml:14:5: invalid annotation slipway.dev/priority `99999999999999999999`: out of range"),
        "{out}"
    );
}

#[test]
fn object_names_and_namespaces_are_checked_as_kubernetes_does() {
    let long = "a".repeat(10_000);
    let out = problems(&format!(
        r#"apiVersion: v1
kind: ConfigMap
metadata: {{name: "a/b"}}
data: {{"../../etc/passwd": x}}
---
apiVersion: v1
kind: Secret
metadata: {{name: ".."}}
---
apiVersion: v1
kind: Secret
metadata: {{name: "{long}"}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: "x\ny"}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{namespace: default}}
---
apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {{name: "../../x", namespace: "Kube_System"}}
spec: {{taskSpec: {{steps: [{{name: s, image: busybox, script: "true"}}]}}}}
---
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata: {{generateName: "../"}}
spec: {{pipelineSpec: {{tasks: [{{name: t, taskSpec: {{steps: [{{name: s, image: busybox, script: "true"}}]}}}}]}}}}
"#
    ));
    for expected in [
        "input.yaml:3:12: invalid ConfigMap name `a/b`",
        "input.yaml:4:8: invalid ConfigMap key `../../etc/passwd`",
        "input.yaml:8:12: invalid Secret name `..`",
        "it is longer than 253 characters",
        "invalid ConfigMap name `x\\ny`",
        "ConfigMap has no metadata.name",
        "input.yaml:24:12: invalid TaskRun name `../../x`",
        "invalid namespace `Kube_System`",
        "input.yaml:29:12: invalid PipelineRun generateName `../`",
    ] {
        assert!(out.contains(expected), "{expected}:\n{out}");
    }
    assert!(
        !out.contains(&long),
        "a long name is cut in messages:\n{out}"
    );
}

#[test]
fn claims_sub_paths_and_mount_paths_stay_inside() {
    let out = problems(
        r#"apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {name: escape}
spec:
  workspaces:
    - name: w
      subPath: ../..
      persistentVolumeClaim: {claimName: ../../../../etc/x}
    - name: c
      configMap:
        name: cm
        items: [{key: k, path: ../../k}]
  taskSpec:
    workspaces:
      - name: w
        mountPath: /workspace/../../etc
      - name: c
    volumes:
      - name: v
        persistentVolumeClaim: {claimName: /etc}
    steps:
      - name: s
        image: busybox
        script: "true"
        volumeMounts:
          - {name: v, mountPath: relative, subPath: /abs}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
data: {k: v}
"#,
    );
    for expected in [
        "input.yaml:7:7: invalid subPath `../..`: it may not contain '..'",
        "input.yaml:8:31: invalid claimName `../../../../etc/x`",
        "invalid item path `../../k`: it may not contain '..'",
        "input.yaml:16:9: invalid mountPath `/workspace/../../etc`",
        "invalid claimName `/etc`",
        "invalid mountPath `relative`: it is not absolute",
        "invalid subPath `/abs`: it is absolute",
    ] {
        assert!(out.contains(expected), "{expected}:\n{out}");
    }
}
