//! Namespaces in the CLI: `-n` and `-A` for runs, describe, logs, rerun and run, on this
//! machine and against a server; tokens limited to namespaces.

use std::path::Path;

use serde_json::Value;

use crate::server::Served;
use crate::{slipway, text};

const HELLO: &str = "apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata:\n  name: hello\nspec:\n  taskSpec:\n    steps:\n    - name: say\n      image: busybox\n      script: echo hello from $(context.taskRun.namespace)\n";

fn write(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write");
    p.display().to_string()
}

/// The table's rows (header first) as words.
fn table(out: &std::process::Output) -> Vec<Vec<String>> {
    text(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

fn ok(out: &std::process::Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn runs_are_listed_and_found_by_namespace_on_this_machine() {
    let home = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    let hello = write(files.path(), "hello.yaml", HELLO);
    ok(&slipway(
        home.path(),
        &["run", "-n", "team-a", "-f", &hello],
    ));
    ok(&slipway(home.path(), &["run", "-f", &hello]));
    // A run naming its namespace lands there without -n.
    let own = write(
        files.path(),
        "own.yaml",
        &HELLO.replace("  name: hello\n", "  name: own\n  namespace: team-b\n"),
    );
    ok(&slipway(home.path(), &["run", "-f", &own]));

    let out = slipway(home.path(), &["run", "-n", "Team/A", "-f", &hello]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let rows = table(&slipway(home.path(), &["runs"]));
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0][0], "NAME");
    assert_eq!(rows[1][0], "hello");
    let rows = table(&slipway(home.path(), &["runs", "-n", "team-b"]));
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1][0], "own");
    let rows = table(&slipway(home.path(), &["runs", "-A"]));
    assert_eq!(rows[0][..2], ["NAMESPACE", "NAME"], "{rows:?}");
    let mut listed: Vec<String> = rows[1..]
        .iter()
        .map(|r| format!("{}/{}", r[0], r[1]))
        .collect();
    listed.sort();
    assert_eq!(listed, ["default/hello", "team-a/hello", "team-b/own"]);

    let logs = slipway(home.path(), &["logs", "hello", "-n", "team-a"]);
    assert_eq!(text(&logs.stdout), "[hello/say] hello from team-a\n");
    let logs = slipway(home.path(), &["logs", "hello"]);
    assert_eq!(text(&logs.stdout), "[hello/say] hello from default\n");
    let out = slipway(home.path(), &["describe", "own"]);
    assert_eq!(out.status.code(), Some(2), "own is not in default");
    let out = slipway(home.path(), &["describe", "own", "-A"]);
    ok(&out);
    assert!(
        text(&out.stdout).contains("Namespace: team-b"),
        "{}",
        text(&out.stdout)
    );
    let out = slipway(
        home.path(),
        &["describe", "hello", "-n", "team-a", "-o", "json"],
    );
    let o: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(o["metadata"]["namespace"], "team-a", "{o}");
    let uid = o["metadata"]["uid"].as_str().unwrap_or("").to_string();
    // A uid prefix finds the run; patterns never do.
    let out = slipway(home.path(), &["describe", &uid[..8], "-A", "-o", "json"]);
    ok(&out);
    for key in ["%%%%%%%%", "________", "hell%"] {
        let out = slipway(home.path(), &["logs", key, "-A"]);
        assert_eq!(out.status.code(), Some(2), "{key}: {}", text(&out.stdout));
    }
    // A rerun stays in its run's namespace.
    let out = slipway(
        home.path(),
        &["rerun", "hello", "-n", "team-a", "-o", "json", "--plain"],
    );
    ok(&out);
    let o: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(o["metadata"]["namespace"], "team-a", "{o}");
    assert_eq!(
        table(&slipway(home.path(), &["runs", "-n", "team-a"])).len(),
        3
    );
}

#[test]
fn namespaces_reach_the_server_and_limit_tokens() {
    let home = tempfile::tempdir().expect("tempdir");
    let client = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    // Tokens made before the server starts: an admin and one limited to team-a.
    let token = |args: &[&str]| {
        let out = slipway(home.path(), args);
        ok(&out);
        text(&out.stdout).trim().to_string()
    };
    let admin = token(&["token", "create", "admin", "--scope", "write"]);
    let team = token(&[
        "token",
        "create",
        "team",
        "--scope",
        "write",
        "--namespace",
        "team-a",
    ]);
    let listed = text(&slipway(home.path(), &["token", "list"]).stdout);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("team ") && l.contains("team-a")),
        "{listed}"
    );
    let out = slipway(
        home.path(),
        &["token", "create", "bad", "--namespace", "A/b"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));

    let s = Served::start(home.path(), &[]);
    let task = write(
        files.path(),
        "task.yaml",
        "apiVersion: tekton.dev/v1\nkind: Task\nmetadata: {name: say}\nspec:\n  steps:\n  - {name: say, image: busybox, script: 'echo hi from $(context.taskRun.namespace)'}\n",
    );
    let as_admin = |args: &[&str]| {
        let mut a = vec!["--token", admin.as_str()];
        a.extend_from_slice(args);
        s.cli(client.path(), &a)
    };
    let as_team = |args: &[&str]| {
        let mut a = vec!["--token", team.as_str()];
        a.extend_from_slice(args);
        s.cli(client.path(), &a)
    };
    ok(&as_admin(&["apply", "-n", "team-a", "-f", &task]));
    ok(&as_admin(&["apply", "-f", &task]));
    let out = as_team(&["run", "task", "say", "-n", "team-a", "--logs"]);
    ok(&out);
    assert_eq!(
        text(&out.stdout)
            .lines()
            .last()
            .map(|l| l.ends_with("hi from team-a")),
        Some(true),
        "{}",
        text(&out.stdout)
    );
    let name = text(&out.stderr)
        .lines()
        .next()
        .and_then(|l| l.strip_suffix(" queued"))
        .expect("queued line")
        .to_string();
    ok(&as_admin(&["run", "task", "say"]));

    // Listed in its namespace only; -A shows the NAMESPACE column.
    let rows = table(&as_admin(&["runs", "-n", "team-a"]));
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1][0], name);
    let rows = table(&as_admin(&["runs", "-A"]));
    assert_eq!(rows[0][..2], ["NAMESPACE", "NAME"], "{rows:?}");
    assert_eq!(rows.len(), 3, "{rows:?}");
    let out = as_admin(&["logs", &name]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "not in default: {}",
        text(&out.stdout)
    );
    let out = as_admin(&["logs", &name, "-A"]);
    ok(&out);
    assert!(
        text(&out.stdout).contains("hi from team-a"),
        "{}",
        text(&out.stdout)
    );
    let out = as_admin(&["describe", &name, "-n", "team-a"]);
    assert!(
        text(&out.stdout).contains("Namespace: team-a"),
        "{}",
        text(&out.stdout)
    );
    let out = as_team(&["rerun", &name, "-n", "team-a"]);
    ok(&out);

    // The limited token: its namespace only, -A filtered to it.
    let out = as_team(&["runs"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("team-a"),
        "{}",
        text(&out.stderr)
    );
    let rows = table(&as_team(&["runs", "-A"]));
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows[1..].iter().all(|r| r[0] == "team-a"), "{rows:?}");
    let out = as_team(&["apply", "-f", &task]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
}
