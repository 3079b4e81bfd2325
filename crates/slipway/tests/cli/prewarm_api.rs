//! OpenKruise's pre-warming kinds from the command line: `validate` (exit 0, or 2 with located
//! errors), `apply`, `get` and `describe` against a real `slipway serve`, and `get` from the
//! server's data directory without it.

use std::path::Path;

use crate::server::Served;
use crate::{slipway, text};

const JOBS: &str = "apiVersion: apps.kruise.io/v1alpha1
kind: ImagePullJob
metadata:
  name: warm-app
spec:
  image: 127.0.0.1:5000/app:1.0
  selector:
    matchLabels: {pool: ci}
  parallelism: 2
  completionPolicy:
    type: Always
    activeDeadlineSeconds: 1200
---
apiVersion: apps.kruise.io/v1beta1
kind: ImageListPullJob
metadata:
  name: warm-base
spec:
  images: [alpine:3.20, busybox:1.36]
  selector: {names: [node-1]}
  completionPolicy: {type: Never}
---
apiVersion: apps.kruise.io/v1alpha1
kind: NodeImage
metadata:
  name: node-1
spec:
  images:
    127.0.0.1:5000/app:
      tags: [{tag: '1.0', version: 1}]
";

const BAD: &str = "apiVersion: apps.kruise.io/v1alpha1
kind: ImagePullJob
metadata:
  name: warm-app
spec:
  image: 127.0.0.1:5000/app:1.0
  selector:
    names: [node-1]
    matchLabels: {pool: ci}
  parallelism: 50%
  completionPolicy:
    type: Never
    ttlSecondsAfterFinished: 60
";

fn write(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write");
    p.display().to_string()
}

/// Output with the temporary directory and ages (`0s`, `12m`) made stable.
fn stable(s: &str, dir: &Path) -> String {
    let s = s.replace(&dir.display().to_string(), "DIR");
    let mut out = String::new();
    for (i, piece) in s.split([' ', '\n']).enumerate() {
        if i > 0 {
            out.push(if s[out.len()..].starts_with('\n') {
                '\n'
            } else {
                ' '
            });
        }
        let age = piece.len() >= 2
            && piece[..piece.len() - 1].chars().all(|c| c.is_ascii_digit())
            && piece.ends_with(['s', 'm', 'h', 'd']);
        if age {
            out.push_str(&"N".repeat(piece.len() - 1));
            out.push_str(&piece[piece.len() - 1..]);
        } else {
            out.push_str(piece);
        }
    }
    out
}

#[test]
fn validate_accepts_the_kinds_and_locates_what_openkruise_refuses() {
    let home = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    let good = write(files.path(), "jobs.yaml", JOBS);
    let out = slipway(home.path(), &["validate", &good]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        "valid: 1 ImagePullJob, 1 ImageListPullJob, 1 NodeImage"
    );
    let bad = write(files.path(), "bad.yaml", BAD);
    let out = slipway(home.path(), &["validate", &bad]);
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!(stable(&text(&out.stderr), files.path()));
}

#[test]
fn apply_get_and_describe_against_a_server_and_from_its_data_directory() {
    let home = tempfile::tempdir().expect("tempdir");
    let client = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    let s = Served::start(home.path(), &[]);
    let jobs = write(files.path(), "jobs.yaml", JOBS);
    let out = s.cli(client.path(), &["apply", "-f", &jobs, "-n", "team-a"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "imagepulljob.apps.kruise.io/warm-app created\nimagelistpulljob.apps.kruise.io/warm-base created\nnodeimage.apps.kruise.io/node-1 created\n"
    );

    // Invalid input: the user's file and line, exit 2, nothing stored.
    let bad = write(
        files.path(),
        "bad.yaml",
        &BAD.replace("warm-app", "warm-bad"),
    );
    let out = s.cli(client.path(), &["apply", "-f", &bad, "-n", "team-a"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("{bad}:8:5: selector.names and a label selector")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{bad}:10:3: parallelism `50%` is a percentage")),
        "{err}"
    );

    // The controller's part, stood in for by a status written through the API.
    let status = "apiVersion: apps.kruise.io/v1alpha1\nkind: ImagePullJob\nmetadata: {name: warm-app}\nspec: {image: '127.0.0.1:5000/app:1.0'}\nstatus:\n  desired: 3\n  active: 1\n  succeeded: 1\n  failed: 1\n  failedNodes: [node-3]\n  message: 1 node failed\n  startTime: '2026-01-01T00:00:00Z'\n";
    let (code, body) = s.http(
        "PUT",
        "/apis/apps.kruise.io/v1alpha1/namespaces/team-a/imagepulljobs/warm-app/status",
        status,
    );
    assert_eq!(code, 200, "{body}");

    let table = s.cli(client.path(), &["get", "imagepulljobs", "-n", "team-a"]);
    assert_eq!(table.status.code(), Some(0), "{}", text(&table.stderr));
    insta::assert_snapshot!(
        "get_imagepulljobs",
        stable(&text(&table.stdout), files.path())
    );
    let all = s.cli(client.path(), &["get", "ImagePullJob", "-A"]);
    assert!(
        text(&all.stdout).starts_with("NAMESPACE   NAME"),
        "{}",
        text(&all.stdout)
    );
    let none = s.cli(client.path(), &["get", "imagepulljob"]);
    assert_eq!(none.status.code(), Some(0));
    assert!(text(&none.stderr).contains("No imagepulljobs found in namespace default"));
    let nodes = s.cli(client.path(), &["get", "nodeimages"]);
    insta::assert_snapshot!("get_nodeimages", stable(&text(&nodes.stdout), files.path()));
    let one = s.cli(
        client.path(),
        &[
            "get",
            "imagelistpulljob",
            "warm-base",
            "-n",
            "team-a",
            "-o",
            "json",
        ],
    );
    let o: serde_json::Value = serde_json::from_slice(&one.stdout).expect("json");
    assert_eq!(o["apiVersion"], "apps.kruise.io/v1alpha1");
    assert_eq!(o["spec"]["parallelism"], 1, "{o}");
    let yaml = s.cli(
        client.path(),
        &["get", "nodeimages.apps.kruise.io", "-o", "yaml"],
    );
    assert!(
        text(&yaml.stdout).contains("kind: List"),
        "{}",
        text(&yaml.stdout)
    );

    let described = s.cli(
        client.path(),
        &["describe", "imagepulljob", "warm-app", "-n", "team-a"],
    );
    assert_eq!(
        described.status.code(),
        Some(0),
        "{}",
        text(&described.stderr)
    );
    let d = text(&described.stdout);
    for want in [
        "Image:            127.0.0.1:5000/app:1.0",
        "Nodes:            labelled pool=ci",
        "Parallelism:      2",
        "Pull policy:      IfNotPresent, timeout 600s, 3 retries",
        "Completion:       Always, deadline 1200s",
        "  desired 3, active 1, succeeded 1, failed 1",
        "  Failed nodes: node-3",
    ] {
        assert!(d.contains(want), "{want:?} not in:\n{d}");
    }
    let missing = s.cli(
        client.path(),
        &["describe", "imagepulljob", "nope", "-n", "team-a"],
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        text(&missing.stderr).contains("ImagePullJob `nope` not found"),
        "{}",
        text(&missing.stderr)
    );
    let unknown = s.cli(client.path(), &["get", "ipjx"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("unknown resource type `ipjx`"));
    s.terminate();

    // Without --server, from the server's data directory.
    let local = slipway(home.path(), &["get", "imagepulljobs", "-n", "team-a"]);
    assert_eq!(local.status.code(), Some(0), "{}", text(&local.stderr));
    assert_eq!(
        stable(&text(&local.stdout), files.path()),
        stable(&text(&table.stdout), files.path())
    );
    let local = slipway(home.path(), &["describe", "nodeimage", "node-1"]);
    assert!(
        text(&local.stdout).contains("Name:             node-1"),
        "{}",
        text(&local.stdout)
    );
}
