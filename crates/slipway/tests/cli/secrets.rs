//! Secrets at rest through the binary: the data directory kept to its owner, Secret values absent
//! from the database files whether a run came through `slipway run -f` or a server, reruns and
//! the API still working, key rotation, a missing key, and the masking notice for short values.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use base64::Engine as _;
use serde_json::Value;

use crate::server::Served;
use crate::{slipway, text};

const VALUE: &str = "s3cr3t-Tok3n-9f2c81";

fn secret(value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: creds}}\nstringData:\n  token: {value}\n"
    )
}

/// A TaskRun that binds the Secret, prints it (masked), its base64 (masked) and its SHA-256, which
/// says the right value was bound without the value appearing anywhere.
const TASKRUN: &str = r#"apiVersion: tekton.dev/v1
kind: TaskRun
metadata: {generateName: uses-creds-}
spec:
  taskSpec:
    steps:
    - name: show
      image: busybox
      env:
      - name: TOKEN
        valueFrom: {secretKeyRef: {name: creds, key: token}}
      script: |
        echo "token=$TOKEN"
        printf %s "$TOKEN" | base64
        printf %s "$TOKEN" | sha256sum
"#;

fn sha256(value: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(value.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn forms(value: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    vec![
        value.to_string(),
        STANDARD.encode(value),
        STANDARD_NO_PAD.encode(value),
        URL_SAFE.encode(value),
        URL_SAFE_NO_PAD.encode(value),
    ]
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The value in none of its forms in the database file, its WAL or its shared memory.
fn assert_not_on_disk(home: &Path) {
    assert_none_on_disk(home, &[VALUE]);
}

fn assert_none_on_disk(home: &Path, values: &[&str]) {
    let mut bytes = Vec::new();
    for f in ["runs.db", "runs.db-wal", "runs.db-shm"] {
        if let Ok(b) = std::fs::read(home.join("db").join(f)) {
            bytes.extend(b);
        }
    }
    assert!(bytes.len() > 4096, "the database was written");
    for f in values.iter().flat_map(|v| forms(v)) {
        assert!(!holds(&bytes, &f), "`{f}` is in the database files");
    }
}

/// A run's output says the right value was bound, and shows it only masked.
fn assert_bound_and_masked(out: &std::process::Output) {
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains(&sha256(VALUE)), "the Secret was bound: {all}");
    assert!(all.contains("token=[MASKED]"), "{all}");
    for f in forms(VALUE) {
        assert!(!all.contains(&f), "`{f}` printed: {all}");
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The data directory and what holds run data are the owner's only.
fn assert_private(home: &Path) {
    assert_eq!(mode(home), 0o700, "{}", home.display());
    for d in ["db", "scratch"] {
        assert_eq!(mode(&home.join(d)), 0o700, "{d}");
    }
    assert_eq!(mode(&home.join("db/runs.db")), 0o600);
    assert_eq!(mode(&home.join("secret.key")), 0o600);
    for f in ["db/runs.db-wal", "db/runs.db-shm", "serve.lock"] {
        if home.join(f).exists() {
            assert_eq!(mode(&home.join(f)), 0o600, "{f}");
        }
    }
}

/// Everything opened up as an older build (or a umask of 022) left it.
fn open_up(home: &Path) {
    for e in walk(home) {
        let m = if e.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(&e, std::fs::Permissions::from_mode(m)).expect("chmod");
    }
}

fn walk(p: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![p.to_path_buf()];
    if p.is_dir() && !p.is_symlink() {
        for e in std::fs::read_dir(p).expect("read dir").flatten() {
            out.extend(walk(&e.path()));
        }
    }
    out
}

fn write(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write");
    p.display().to_string()
}

fn run_name(out: &std::process::Output) -> String {
    let err = format!("{}{}", text(&out.stderr), text(&out.stdout));
    err.lines()
        .find_map(|l| {
            l.strip_suffix(" started")
                .or_else(|| l.strip_suffix(" queued"))
                .map(|n| n.rsplit(' ').next().unwrap_or(n).to_string())
        })
        .unwrap_or_else(|| panic!("no run name in {err}"))
}

/// `GET` on the server with its admin token, parsed.
fn get(s: &Served, path: &str) -> Value {
    let response = get_text(&s.url, s.token.as_deref(), path);
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response}"))
}

/// `GET` on the server: the whole response.
fn get_text(url: &str, token: Option<&str>, path: &str) -> String {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\n{auth}Connection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    s.read_to_string(&mut response).expect("response");
    response
}

#[test]
fn the_data_directory_is_private_after_run_and_serve() {
    let base = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    let run = write(
        files.path(),
        "run.yaml",
        &format!("{}---\n{TASKRUN}", secret(VALUE)),
    );
    // `run`, on a fresh directory and on one an older build left open.
    let home = base.path().join("fresh-run");
    for _ in 0..2 {
        let out = slipway(&home, &["run", "-f", &run, "--plain"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_private(&home);
        open_up(&home);
        assert_eq!(mode(&home.join("db/runs.db")), 0o644);
    }
    // `serve`, likewise: modes are checked while it runs (the WAL is open).
    let home = base.path().join("fresh-serve");
    for _ in 0..2 {
        let s = Served::start(&home, &[]);
        assert!(get_text(&s.url, None, "/healthz").starts_with("HTTP/1.1 200"));
        assert_private(&home);
        assert!(home.join("serve.lock").exists());
        s.terminate();
        open_up(&home);
    }
    // A home made by someone else's mkdir (0755) before slipway ever ran.
    let home = base.path().join("made-by-mkdir");
    std::fs::create_dir(&home).expect("mkdir");
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let s = Served::start(&home, &[]);
    assert_private(&home);
    s.terminate();
}

#[test]
fn secrets_stay_sealed_through_run_serve_rerun_and_rotation() {
    let home = tempfile::tempdir().expect("tempdir");
    let client = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    let home = home.path();

    // `slipway run -f`: the Secret comes from the file and lands in the run's stored inputs.
    let local = write(
        files.path(),
        "local.yaml",
        &format!("{}---\n{TASKRUN}", secret(VALUE)),
    );
    let out = slipway(home, &["run", "-f", &local, "--plain", "--logs"]);
    assert_bound_and_masked(&out);
    let local_run = run_name(&out);
    assert_not_on_disk(home);

    // A server: the Secret is applied (kept as a resource), the run binds it from there.
    let s = Served::start(home, &[]);
    let applied = s.cli(
        client.path(),
        &[
            "apply",
            "-f",
            &write(files.path(), "s.yaml", &secret(VALUE)),
        ],
    );
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied.stderr));
    let taskrun = write(files.path(), "tr.yaml", TASKRUN);
    let out = s.cli(client.path(), &["run", "-f", &taskrun, "--logs"]);
    assert_bound_and_masked(&out);
    let served_run = run_name(&out);
    // The API shows the Secret's keys, never its values.
    let shown = get(&s, "/api/v1/namespaces/default/secrets/creds");
    assert_eq!(shown["stringData"]["token"], "<redacted>", "{shown}");
    assert!(!shown.to_string().contains(VALUE));
    assert_not_on_disk(home);
    // Reruns bind it again from the sealed inputs, on the server and here.
    assert_bound_and_masked(&s.cli(client.path(), &["rerun", &served_run, "--logs"]));
    s.terminate();
    assert_bound_and_masked(&slipway(home, &["rerun", &local_run, "--plain", "--logs"]));
    assert_not_on_disk(home);

    // Rotation: refused while a server holds the data directory, then everything sealed again.
    let key_before = std::fs::read_to_string(home.join("secret.key")).expect("key");
    let s = Served::start(home, &[]);
    let refused = slipway(home, &["secrets", "rotate-key"]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    assert!(
        text(&refused.stderr).contains("stop the server"),
        "{}",
        text(&refused.stderr)
    );
    s.terminate();
    let rotated = slipway(home, &["secrets", "rotate-key"]);
    assert_eq!(rotated.status.code(), Some(0), "{}", text(&rotated.stderr));
    assert!(
        text(&rotated.stdout).contains("sealed again 1 Secret(s) and the inputs of 4 run(s)"),
        "{}",
        text(&rotated.stdout)
    );
    let key_after = std::fs::read_to_string(home.join("secret.key")).expect("key");
    assert_ne!(key_before, key_after);
    assert_eq!(mode(&home.join("secret.key")), 0o600);
    assert_bound_and_masked(&slipway(home, &["rerun", &local_run, "--plain", "--logs"]));
    let s = Served::start(home, &[]);
    let shown = get(&s, "/api/v1/namespaces/default/secrets/creds");
    assert_eq!(shown["stringData"]["token"], "<redacted>", "{shown}");
    assert_bound_and_masked(&s.cli(client.path(), &["rerun", &served_run, "--logs"]));
    s.terminate();
    assert_not_on_disk(home);

    // Without its key the data directory is refused, clearly, and nothing is lost.
    let kept = client.path().join("kept.key");
    std::fs::rename(home.join("secret.key"), &kept).expect("move the key away");
    let out = slipway(home, &["runs"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("secret.key does not exist") && err.contains("--secret-key-file"),
        "{err}"
    );
    assert!(
        !home.join("secret.key").exists(),
        "no new key over sealed data"
    );
    // The key kept elsewhere, named by the environment (as a mounted Kubernetes Secret would be).
    let out = crate::slipway_with(
        home,
        &["rerun", &local_run, "--plain", "--logs"],
        &[("SLIPWAY_SECRET_KEY_FILE", &kept.display().to_string())],
    );
    assert_bound_and_masked(&out);
}

#[test]
fn a_secret_too_short_to_mask_is_named_in_a_notice() {
    let home = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    let yaml = format!(
        "{}---\n{}",
        secret("abc").replace("creds", "pin"),
        TASKRUN.replace("creds", "pin")
    );
    let out = slipway(
        home.path(),
        &[
            "run",
            "-f",
            &write(files.path(), "r.yaml", &yaml),
            "--plain",
            "--logs",
        ],
    );
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("the value of Secret \"pin\" key \"token\" is shorter than 4 characters and is not masked in logs"),
        "{all}"
    );
    assert!(all.contains("token=abc"), "{all}");
    let encoded = base64::engine::general_purpose::STANDARD.encode("abc");
    assert!(all.contains(&encoded), "{all}");
}

#[test]
fn params_declared_secret_are_sealed_in_the_stored_run() {
    let home = tempfile::tempdir().expect("tempdir");
    let fixture = crate::fixtures().join("secrets.yaml");
    let out = slipway(
        home.path(),
        &["run", "-f", &fixture.display().to_string(), "--plain"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_none_on_disk(home.path(), &["tok-7f3a9c1e", "hunter2-pw"]);
    let again = slipway(home.path(), &["rerun", "leaky-run", "--plain", "--logs"]);
    let all = format!("{}{}", text(&again.stdout), text(&again.stderr));
    assert_eq!(again.status.code(), Some(0), "{all}");
    assert!(all.contains("param: [MASKED] user: alice"), "{all}");
    assert_none_on_disk(home.path(), &["tok-7f3a9c1e", "hunter2-pw"]);
}

#[test]
fn the_key_can_live_outside_the_data_directory() {
    let home = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    let run = write(
        files.path(),
        "run.yaml",
        &format!("{}---\n{TASKRUN}", secret(VALUE)),
    );
    // The config file names it relative to itself.
    let config = write(
        files.path(),
        "config.toml",
        "[secrets]\nkey_file = \"keys/slipway.key\"\n",
    );
    let from_config = files.path().join("keys/slipway.key");
    let out = crate::slipway_with(
        home.path(),
        &["run", "-f", &run, "--plain", "--logs"],
        &[("SLIPWAY_CONFIG", &config)],
    );
    assert_bound_and_masked(&out);
    assert!(
        from_config.exists(),
        "the key is where the config file says"
    );
    assert_eq!(mode(&from_config), 0o600);
    assert!(!home.path().join("secret.key").exists());
    let shown = crate::slipway_with(
        home.path(),
        &["secrets", "key"],
        &[("SLIPWAY_CONFIG", &config)],
    );
    assert!(
        text(&shown.stdout).contains(&from_config.display().to_string()),
        "{}",
        text(&shown.stdout)
    );
    // The flag wins over the config file (and a missing one is refused, not replaced).
    let flag = files.path().join("other.key");
    std::fs::copy(&from_config, &flag).expect("copy");
    let out = crate::slipway_with(
        home.path(),
        &["--secret-key-file", &flag.display().to_string(), "runs"],
        &[("SLIPWAY_CONFIG", &config)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    std::fs::remove_file(&flag).expect("rm");
    let out = crate::slipway_with(
        home.path(),
        &["--secret-key-file", &flag.display().to_string(), "runs"],
        &[("SLIPWAY_CONFIG", &config)],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("other.key does not exist"),
        "{}",
        text(&out.stderr)
    );
    assert_not_on_disk(home.path());
}
