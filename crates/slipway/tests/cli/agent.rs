//! `slipway agent`: pulls through a real containerd node's CRI socket
//! (`scripts/containerd-env.sh`), and bad input.

use std::path::Path;
use std::process::Command;

use super::{slipway, text};

/// Starts the containerd nodes (idempotent) and holds node 2 for this test: the prewarm
/// crate's tests take the same lock.
fn take_node_2() -> (String, std::fs::File) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for script in ["scripts/docker-env.sh", "scripts/containerd-env.sh"] {
        let out = Command::new("bash")
            .arg(root.join(script))
            .output()
            .expect("run the env script");
        assert!(out.status.success(), "{script}: {}", text(&out.stderr));
    }
    let socket = "/tmp/slipway-containerd/node-2/containerd.sock".to_string();
    let lock = std::fs::File::create("/tmp/slipway-containerd/node-2/test.lock").expect("lock");
    lock.lock().expect("lock node 2");
    (socket, lock)
}

fn ctr(socket: &str, args: &[&str]) -> String {
    let out = Command::new("ctr")
        .args(["--address", socket, "-n", "k8s.io"])
        .args(args)
        .output()
        .expect("run ctr");
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn the_agent_pulls_onto_the_node_and_reports_each_outcome() {
    let (socket, _lock) = take_node_2();
    let home = tempfile::tempdir().expect("tempdir");
    let good = "127.0.0.1:5000/library/bash:latest";
    let missing = "127.0.0.1:5000/library/not-there:latest";
    ctr(&socket, &["images", "rm", "--sync", good]);
    let endpoint = format!("unix://{socket}");
    let out = slipway(
        home.path(),
        &[
            "agent",
            "--node",
            "node-2",
            "--cri-endpoint",
            &endpoint,
            "--pull",
            good,
            "--pull",
            missing,
            "--backoff-limit",
            "0",
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    let line = |image: &str, phase: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{image}  {phase}")))
            .unwrap_or_else(|| panic!("no {phase} line for {image}:\n{stdout}"))
            .to_string()
    };
    assert!(line(good, "Succeeded").contains("sha256:"));
    line(good, "Waiting");
    line(good, "Pulling  attempt 1");
    assert!(line(missing, "Failed").ends_with("not found"), "{stdout}");
    assert!(
        stdout.ends_with("node node-2: 1 succeeded, 1 failed\n"),
        "{stdout}"
    );
    assert!(
        ctr(&socket, &["images", "ls", "-q"])
            .lines()
            .any(|l| l == good)
    );
}

#[test]
fn an_unreachable_cri_socket_is_named_and_exits_2() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = slipway(
        home.path(),
        &[
            "agent",
            "--node",
            "n",
            "--cri-endpoint",
            "unix:///tmp/slipway-no-such-runtime.sock",
            "--pull",
            "busybox",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!(text(&out.stderr));
}

#[test]
fn a_socket_that_is_not_cri_is_named_and_exits_2() {
    let home = tempfile::tempdir().expect("tempdir");
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("not-cri.sock");
    // Something that accepts and speaks no HTTP/2.
    let listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    let endpoint = format!("unix://{}", socket.display());
    let out = slipway(
        home.path(),
        &[
            "agent",
            "--node",
            "n",
            "--cri-endpoint",
            &endpoint,
            "--pull",
            "busybox",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&endpoint), "{stderr}");
    assert!(stderr.contains("hint: "), "{stderr}");
}

#[test]
fn bad_agent_input_exits_2_with_a_hint() {
    let home = tempfile::tempdir().expect("tempdir");
    let mut all = String::new();
    for args in [
        &["agent", "--node", "n", "--pull", "Not An Image"][..],
        &[
            "agent",
            "--node",
            "n",
            "--cri-endpoint",
            "tcp://10.0.0.1:1",
            "--pull",
            "a",
        ],
        &["agent", "--node", "n"],
        &[
            "agent",
            "--node",
            "n",
            "--pull",
            "a",
            "--docker-config",
            "/nonexistent/config.json",
        ],
    ] {
        let out = slipway(home.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        all.push_str(&format!(
            "$ slipway {}\n{}\n",
            args.join(" "),
            text(&out.stderr)
        ));
    }
    insta::assert_snapshot!(all);
}
