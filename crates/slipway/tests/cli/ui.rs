//! The web UI end to end: real runs seeded with the binary (a succeeded fan-out/fan-in pipeline
//! with a matrix, a failed one with ANSI-coloured output, a standalone `TaskRun`, and one still
//! running), `slipway serve` on a free port, and `crates/slipway-server/tests/ui/e2e.mjs` driving
//! Debian's headless Chromium through playwright-core (installed by `scripts/ui-env.sh`).
//! Screenshots are kept in `<workspace>/artifacts/ui/`.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Kills a background process when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

fn ui_tests() -> PathBuf {
    workspace_root().join("crates/slipway-server/tests/ui")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `slipway run -f FILE` into `home`; returns the exit code.
fn run_file(home: &Path, file: &Path) -> i32 {
    let out = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(["run", "-f"])
        .arg(file)
        .env("SLIPWAY_HOME", home)
        .env("NO_COLOR", "1")
        .output()
        .expect("slipway runs");
    let code = out.status.code().unwrap_or(-1);
    assert!(
        code <= 1,
        "slipway run -f {} exited {code}:\n{}{}",
        file.display(),
        text(&out.stdout),
        text(&out.stderr)
    );
    code
}

/// Starts `slipway serve` on a free loopback port, as a first start: returns the process,
/// `http://ADDR` and the admin token it printed.
fn serve(home: &Path) -> (Killed, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("SLIPWAY_HOME", home)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("slipway serve starts");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    // Reads the banner up to the address, then keeps draining stderr so that the server never
    // blocks on it.
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stderr);
        let mut line = String::new();
        let mut token = String::new();
        let mut sent = false;
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(t) = line.split("#token=").nth(1) {
                token = t.trim().to_string();
            }
            if !sent && let Some(rest) = line.strip_prefix("serving the slipway API on ") {
                let addr: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
                let _ = tx.send((addr, std::mem::take(&mut token)));
                sent = true;
            }
            line.clear();
        }
        let mut rest = Vec::new();
        let _ = reader.read_to_end(&mut rest);
    });
    let server = Killed(child);
    let (addr, token) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("slipway serve prints its address");
    assert!(
        token.starts_with("slw_"),
        "no admin token printed at the first start"
    );
    (server, addr, token)
}

#[test]
fn web_ui_works_in_headless_chromium() {
    let root = workspace_root();
    let env = Command::new("bash")
        .arg(root.join("scripts/ui-env.sh"))
        .output()
        .expect("scripts/ui-env.sh runs");
    assert!(
        env.status.success(),
        "scripts/ui-env.sh failed:\n{}{}",
        text(&env.stdout),
        text(&env.stderr)
    );
    let modules = text(&env.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string();

    let home = tempfile::tempdir().expect("tempdir");
    let fixtures = ui_tests().join("fixtures");
    assert_eq!(run_file(home.path(), &fixtures.join("fanin.yaml")), 0);
    assert_eq!(run_file(home.path(), &fixtures.join("broken.yaml")), 1);
    assert_eq!(run_file(home.path(), &fixtures.join("solo.yaml")), 0);
    assert_eq!(run_file(home.path(), &fixtures.join("elsewhere.yaml")), 0);
    // Still running while the browser looks at it (about 30 s of output).
    let _live = Killed(
        Command::new(env!("CARGO_BIN_EXE_slipway"))
            .args(["run", "-f"])
            .arg(fixtures.join("live.yaml"))
            .env("SLIPWAY_HOME", home.path())
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("slipway run starts"),
    );
    let (_server, base, token) = serve(home.path());

    let artifacts = root.join("artifacts/ui");
    std::fs::create_dir_all(&artifacts).expect("artifacts dir");
    let out = Command::new("node")
        .arg(ui_tests().join("e2e.mjs"))
        .env("BASE_URL", &base)
        .env("SLIPWAY_TOKEN", &token)
        .env("SLIPWAY_BIN", env!("CARGO_BIN_EXE_slipway"))
        .env("SLIPWAY_SERVER_HOME", home.path())
        .env("ARTIFACTS", &artifacts)
        .env("SLIPWAY_UI_NODE_MODULES", &modules)
        .env("RUN_OK", "ui-fanin")
        .env("RUN_FAIL", "ui-broken")
        .env("RUN_LIVE", "ui-live")
        .env("RUN_SOLO", "ui-solo")
        .env("RUN_OTHER_NS", "ui-elsewhere")
        .output()
        .expect("node runs");
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    println!("{report}");
    assert!(
        out.status.success(),
        "the UI end-to-end test failed (screenshots in {}):\n{report}",
        artifacts.display()
    );
}

/// The pre-warming page: a real server whose controller spreads a job over two nodes
/// registered as agents register them, statuses written as agents write them, and
/// `crates/slipway-server/tests/ui/prewarm.mjs` looking at the grid in headless Chromium.
#[test]
fn prewarm_page_shows_the_node_grid_live_in_headless_chromium() {
    use crate::server::Served;
    use serde_json::{Value, json};
    let root = workspace_root();
    let env = Command::new("bash")
        .arg(root.join("scripts/ui-env.sh"))
        .output()
        .expect("scripts/ui-env.sh runs");
    assert!(
        env.status.success(),
        "scripts/ui-env.sh failed: {}",
        text(&env.stderr)
    );
    let modules = text(&env.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string();
    let home = tempfile::tempdir().expect("tempdir");
    let server = Served::start(home.path(), &[]);
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    for node in ["node-a", "node-b"] {
        let body = json!({"metadata": {"name": node}, "status": {"conditions": [
            {"type": "Ready", "status": "True", "lastHeartbeatTime": now}]}});
        let (code, out) = server.http("PUT", &format!("/api/v1/nodes/{node}"), &body.to_string());
        assert!(code < 300, "{out}");
    }
    let job = "apiVersion: apps.kruise.io/v1alpha1\nkind: ImagePullJob\nmetadata: {name: warm-ui}\nspec:\n  image: 127.0.0.1:5000/slipway-test/big:latest\n  parallelism: 2\n  selector: {names: [node-a, node-b]}\n";
    let (code, out) = server.http(
        "POST",
        "/apis/apps.kruise.io/v1alpha1/namespaces/default/imagepulljobs",
        job,
    );
    assert_eq!(code, 201, "{out}");
    let node_image = |node: &str| -> Value {
        let (_, out) = server.http(
            "GET",
            &format!("/apis/apps.kruise.io/v1alpha1/nodeimages/{node}"),
            "",
        );
        serde_json::from_str(&out).unwrap_or(Value::Null)
    };
    let start = std::time::Instant::now();
    while node_image("node-b")["spec"]["images"]
        .as_object()
        .is_none_or(|m| m.is_empty())
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the controller asked no node"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // As the agents report: node-a done, node-b half-way.
    for (node, phase, done) in [
        ("node-a", "Succeeded", 125_900_000u64),
        ("node-b", "Pulling", 50_000_000),
    ] {
        let mut ni = node_image(node);
        let version =
            ni["spec"]["images"]["127.0.0.1:5000/slipway-test/big"]["tags"][0]["version"].clone();
        ni["status"] = json!({"desired": 1, "imageStatuses": {"127.0.0.1:5000/slipway-test/big": {"tags": [{
            "tag": "latest", "phase": phase, "version": version, "startTime": now,
            "completedBytes": done, "totalBytes": 125_900_000u64,
            "completionTime": if phase == "Succeeded" { json!(now) } else { Value::Null },
        }]}}});
        if let Some(m) = ni["metadata"].as_object_mut() {
            m.remove("resourceVersion");
        }
        let (code, out) = server.http(
            "PUT",
            &format!("/apis/apps.kruise.io/v1alpha1/nodeimages/{node}/status"),
            &ni.to_string(),
        );
        assert_eq!(code, 200, "{out}");
    }
    let artifacts = root.join("artifacts/ui");
    std::fs::create_dir_all(&artifacts).expect("artifacts dir");
    let out = Command::new("node")
        .arg(ui_tests().join("prewarm.mjs"))
        .env("BASE_URL", &server.url)
        .env("SLIPWAY_TOKEN", server.token.clone().unwrap_or_default())
        .env("JOB", "warm-ui")
        .env("ARTIFACTS", &artifacts)
        .env("SLIPWAY_UI_NODE_MODULES", &modules)
        .output()
        .expect("node runs");
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success(),
        "the pre-warming page check failed:\n{report}"
    );
}
