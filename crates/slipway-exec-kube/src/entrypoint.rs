//! `slipway entrypoint`: what runs first in every step container of a TaskRun's Pod. It waits
//! for the step before to post its file, runs the step's command, posts its own file, and
//! prints a [`Report`] of the exit code and results on stdout, as Tekton's entrypoint orders
//! steps inside one Pod.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::frame::{Ending, Report};

/// How often files and the child are looked at.
const POLL: Duration = Duration::from_millis(50);

/// The suffix of a post file that says the step failed, so the steps after it are skipped.
pub const FAILED_SUFFIX: &str = ".err";

/// One step's orders, as the executor writes them on the container's command line.
#[derive(Debug, Clone, Default)]
pub struct Entrypoint {
    /// Posted by the step before; absent for the first step.
    pub wait_file: Option<PathBuf>,
    /// Tekton's `/tekton/downward/ready`: the step starts once it holds something, which the
    /// executor writes (through a Pod annotation) when every sidecar is ready.
    pub ready_file: Option<PathBuf>,
    /// Posted by this step when it ends (with [`FAILED_SUFFIX`] when it failed).
    pub post_file: PathBuf,
    /// `/tekton/steps/step-NAME`: gets `exitCode` and `results/`.
    pub step_dir: Option<PathBuf>,
    /// The step's index: `/tekton/steps/INDEX` links to its directory, as in Tekton.
    pub step_index: Option<usize>,
    /// The TaskRun's results directory, reported by the last step.
    pub results_dir: Option<PathBuf>,
    /// The step's timeout.
    pub timeout: Option<Duration>,
    /// `onError: continue`: a failure does not stop the steps after it.
    pub continue_on_error: bool,
    /// The step's script, base64, with its shebang.
    pub script: Option<String>,
    /// Where the script is written.
    pub scripts_dir: PathBuf,
    /// Where stdout is also written.
    pub stdout_path: Option<PathBuf>,
    /// Where stderr is also written.
    pub stderr_path: Option<PathBuf>,
    /// Largest result file reported, in bytes.
    pub max_result_bytes: u64,
    /// The command and its arguments.
    pub command: Vec<String>,
}

/// Why `--copy-from` could not copy slipway's files.
#[derive(Debug, thiserror::Error)]
#[error("failed to copy {} to {}", from.display(), to.display())]
pub struct InstallError {
    from: PathBuf,
    to: PathBuf,
    #[source]
    source: std::io::Error,
}

/// Copies slipway's binary, loader and libraries (the directory `from`) into the shared
/// volume `to`, readable and executable by every user the steps may run as.
pub fn install(from: &Path, to: &Path) -> Result<(), InstallError> {
    let fail = |source| InstallError {
        from: from.to_path_buf(),
        to: to.to_path_buf(),
        source,
    };
    copy_tree(from, to).map_err(fail)
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    if !to.exists() {
        std::fs::create_dir_all(to)?;
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755))?;
    }
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        // Follows links: the image may hold the libraries as `ldd` named them.
        if std::fs::metadata(entry.path())?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    Ok(())
}

static TERMINATED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigterm(_: libc::c_int) {
    TERMINATED.store(true, Ordering::SeqCst);
}

/// Runs the step; returns the container's exit code.
pub fn run(e: &Entrypoint) -> i32 {
    // As PID 1 of the container, SIGTERM would be ignored without a handler; the Pod's
    // deletion should stop the step at once, not after the grace period.
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(
            libc::SIGTERM,
            on_sigterm as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
    if let Some(dir) = &e.step_dir {
        let _ = std::fs::create_dir_all(dir.join("results"));
        if let (Some(i), Some(root), Some(name)) = (e.step_index, dir.parent(), dir.file_name()) {
            let _ = std::os::unix::fs::symlink(name, root.join(i.to_string()));
        }
    }
    if let Some(f) = &e.ready_file
        && !wait_for_content(f)
    {
        return finish(e, 143, Ending::Terminated, None);
    }
    let previous_failed = match &e.wait_file {
        Some(f) => match wait_for(f) {
            Some(failed) => failed,
            None => return finish(e, 143, Ending::Terminated, None),
        },
        None => false,
    };
    if previous_failed {
        return finish(e, 0, Ending::Skipped, None);
    }
    let command = match prepare(e) {
        Ok(c) => c,
        Err(why) => return finish(e, 1, Ending::StartFailed, Some(why)),
    };
    match start(e, &command) {
        Ok((child, copies)) => {
            let (code, ending) = supervise(child, e.timeout);
            // The files must be whole before the next step reads them.
            for c in copies {
                let _ = c.join();
            }
            finish(e, code, ending, None)
        }
        Err(why) => finish(e, 1, Ending::StartFailed, Some(why)),
    }
}

/// Waits for `file` or its failed form; `Some(true)` when the step before failed, `None`
/// when told to stop.
fn wait_for(file: &Path) -> Option<bool> {
    let mut failed = file.as_os_str().to_owned();
    failed.push(FAILED_SUFFIX);
    let failed = PathBuf::from(failed);
    loop {
        if file.exists() {
            return Some(false);
        }
        if failed.exists() {
            return Some(true);
        }
        if TERMINATED.load(Ordering::SeqCst) {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// Waits until `file` holds something; false when told to stop.
fn wait_for_content(file: &Path) -> bool {
    loop {
        if std::fs::metadata(file).is_ok_and(|m| m.len() > 0) {
            return true;
        }
        if TERMINATED.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// The command to run: step results of earlier steps substituted, the script written out.
fn prepare(e: &Entrypoint) -> Result<Vec<String>, String> {
    let steps_root = e.step_dir.as_deref().and_then(Path::parent);
    let subst = |s: &str| match steps_root {
        Some(root) => substitute_step_results(s, root),
        None => s.to_string(),
    };
    let mut command: Vec<String> = e.command.iter().map(|a| subst(a)).collect();
    if let Some(b64) = &e.script {
        let body = base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map_err(|err| format!("the script is not base64: {err}"))?;
        let body = subst(&String::from_utf8_lossy(&body));
        let name = e
            .step_dir
            .as_deref()
            .and_then(Path::file_name)
            .map(|n| format!("script-{}", n.to_string_lossy()))
            .unwrap_or_else(|| "script".to_string());
        let path = e.scripts_dir.join(name);
        write_executable(&path, body.as_bytes())
            .map_err(|err| format!("failed to write the script to {}: {err}", path.display()))?;
        command.insert(0, path.to_string_lossy().into_owned());
    }
    if command.is_empty() {
        return Err("the step has no command".to_string());
    }
    Ok(command)
}

fn write_executable(path: &Path, body: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, body)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}

/// Replaces `$(steps.NAME.results.R)` with the file an earlier step wrote, as Tekton's
/// entrypoint does; references to results that do not exist stay as written.
pub fn substitute_step_results(text: &str, steps_root: &Path) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("$(steps.") {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let Some(close) = tail.find(')') else {
            out.push_str(tail);
            return out;
        };
        let inner = &tail[2..close];
        let value = inner
            .strip_prefix("steps.")
            .and_then(|r| r.split_once(".results."))
            .filter(|(step, result)| safe_name(step) && safe_name(result))
            .and_then(|(step, result)| {
                let step = step.strip_prefix("step-").unwrap_or(step);
                std::fs::read_to_string(
                    steps_root
                        .join(format!("step-{step}"))
                        .join("results")
                        .join(result),
                )
                .ok()
            });
        match value {
            Some(v) => out.push_str(&v),
            None => out.push_str(&tail[..=close]),
        }
        rest = &tail[close + 1..];
    }
    out.push_str(rest);
    out
}

/// A step or result name that cannot leave its directory.
fn safe_name(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

type Copies = Vec<std::thread::JoinHandle<()>>;

fn start(e: &Entrypoint, command: &[String]) -> Result<(Child, Copies), String> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| "the step has no command".to_string())?;
    let open = |p: &PathBuf| -> Result<Arc<Mutex<std::fs::File>>, String> {
        if let Some(dir) = p.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        std::fs::File::create(p)
            .map(|f| Arc::new(Mutex::new(f)))
            .map_err(|err| format!("failed to create {}: {err}", p.display()))
    };
    let out_file = e.stdout_path.as_ref().map(open).transpose()?;
    // stdout and stderr into one file share it, as Tekton's entrypoint does.
    let err_file = match (&e.stderr_path, &out_file) {
        (Some(p), Some(f)) if Some(p) == e.stdout_path.as_ref() => Some(f.clone()),
        (Some(p), _) => Some(open(p)?),
        (None, _) => None,
    };
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null());
    if out_file.is_some() {
        cmd.stdout(Stdio::piped());
    }
    if err_file.is_some() {
        cmd.stderr(Stdio::piped());
    }
    let mut child = cmd
        .spawn()
        .map_err(|err| format!("failed to start `{program}`: {err}"))?;
    let mut copies = Vec::new();
    if let (Some(file), Some(out)) = (out_file, child.stdout.take()) {
        copies.push(tee(out, file, false));
    }
    if let (Some(file), Some(err)) = (err_file, child.stderr.take()) {
        copies.push(tee(err, file, true));
    }
    Ok((child, copies))
}

/// Copies a child's stream to ours and to a file (`stdoutConfig.path`).
fn tee(
    mut from: impl Read + Send + 'static,
    file: Arc<Mutex<std::fs::File>>,
    stderr: bool,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            if stderr {
                let _ = std::io::stderr().write_all(&buf[..n]);
            } else {
                let _ = std::io::stdout().write_all(&buf[..n]);
            }
            if let Ok(mut f) = file.lock() {
                let _ = f.write_all(&buf[..n]);
            }
        }
    })
}

/// Waits for the child within the timeout; kills it when out of time or told to stop.
fn supervise(mut child: Child, timeout: Option<Duration>) -> (i32, Ending) {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return (exit_code(status), Ending::Exited),
            Ok(None) => {}
            Err(_) => return (1, Ending::Exited),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return (137, Ending::TimedOut);
        }
        if TERMINATED.load(Ordering::SeqCst) {
            let _ = child.kill();
            let _ = child.wait();
            return (143, Ending::Terminated);
        }
        std::thread::sleep(POLL);
    }
}

fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

/// Records the exit code, posts the file, prints the report; returns the exit code.
fn finish(e: &Entrypoint, code: i32, ending: Ending, message: Option<String>) -> i32 {
    let mut too_large = BTreeMap::new();
    let step_results = match &e.step_dir {
        Some(dir) => {
            let _ = std::fs::write(dir.join("exitCode"), code.to_string());
            read_dir_files(&dir.join("results"), e.max_result_bytes, &mut too_large)
        }
        None => BTreeMap::new(),
    };
    let results = match &e.results_dir {
        Some(dir) => read_dir_files(dir, e.max_result_bytes, &mut too_large),
        None => BTreeMap::new(),
    };
    let failed = match ending {
        Ending::Exited => code != 0 && !e.continue_on_error,
        Ending::Skipped | Ending::TimedOut | Ending::StartFailed | Ending::Terminated => true,
    };
    let mut post = e.post_file.as_os_str().to_owned();
    if failed {
        post.push(FAILED_SUFFIX);
    }
    let post = PathBuf::from(post);
    if let Some(dir) = post.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(&post, code.to_string());
    let report = Report {
        exit_code: code,
        ending,
        message: message.clone(),
        step_results,
        results,
        too_large,
    };
    if let Some(m) = &message {
        eprintln!("{m}");
    }
    let mut out = std::io::stdout().lock();
    for line in report.to_lines() {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
    code
}

/// Regular files of `dir` by name, each up to `max` bytes; larger ones are only counted.
fn read_dir_files(
    dir: &Path,
    max: u64,
    too_large: &mut BTreeMap<String, u64>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(meta) = std::fs::metadata(entry.path()) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        if meta.len() > max {
            too_large.insert(name, meta.len());
            continue;
        }
        if let Ok(bytes) = std::fs::read(entry.path()) {
            out.insert(name, String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{Line, Reader};

    #[test]
    fn step_results_are_substituted_from_files_and_unknown_ones_kept() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("step-first/results");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("out"), "42").expect("write");
        assert_eq!(
            substitute_step_results(
                "a $(steps.first.results.out) b $(steps.first.results.none) $(steps.../x) $(steps.",
                root.path()
            ),
            "a 42 b $(steps.first.results.none) $(steps.../x) $(steps."
        );
    }

    #[test]
    fn the_first_step_waits_until_the_ready_file_holds_something() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ready = dir.path().join("ready");
        // As the kubelet projects an annotation not yet set: the file exists, empty.
        std::fs::write(&ready, "").expect("write");
        let e = Entrypoint {
            ready_file: Some(ready.clone()),
            post_file: dir.path().join("run/0/out"),
            scripts_dir: dir.path().join("scripts"),
            command: vec!["true".into()],
            ..Entrypoint::default()
        };
        let step = std::thread::spawn(move || run(&e));
        std::thread::sleep(Duration::from_millis(300));
        assert!(!step.is_finished(), "the step waits for the sidecars");
        assert!(!dir.path().join("run/0/out").exists());
        std::fs::write(&ready, "READY").expect("write");
        assert_eq!(step.join().expect("the step ends"), 0);
        assert!(dir.path().join("run/0/out").exists());
    }

    #[test]
    fn post_files_and_exit_codes_follow_the_command() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = Entrypoint {
            step_dir: Some(dir.path().join("steps/step-a")),
            results_dir: Some(dir.path().join("results")),
            scripts_dir: dir.path().join("scripts"),
            max_result_bytes: 4,
            ..Entrypoint::default()
        };
        let ok = Entrypoint {
            post_file: dir.path().join("run/0/out"),
            script: Some(base64::engine::general_purpose::STANDARD.encode(format!(
                "#!/bin/sh\nmkdir -p {0} && printf abc > {0}/small && printf abcdef > {0}/big\n",
                dir.path().join("results").display()
            ))),
            ..base.clone()
        };
        assert_eq!(run(&ok), 0);
        assert!(dir.path().join("run/0/out").exists());
        let failing = Entrypoint {
            wait_file: Some(dir.path().join("run/0/out")),
            post_file: dir.path().join("run/1/out"),
            command: vec!["sh".into(), "-c".into(), "exit 3".into()],
            ..base.clone()
        };
        assert_eq!(run(&failing), 3);
        assert!(dir.path().join("run/1/out.err").exists());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("steps/step-a/exitCode")).expect("exitCode"),
            "3"
        );
        let skipped = Entrypoint {
            wait_file: Some(dir.path().join("run/1/out")),
            post_file: dir.path().join("run/2/out"),
            command: vec!["false".into()],
            ..base
        };
        assert_eq!(run(&skipped), 0);
        assert!(dir.path().join("run/2/out.err").exists());
        // The report is what a reader of the log finds: results within the limit only.
        let mut report = Report {
            exit_code: 0,
            ending: Ending::Exited,
            message: None,
            step_results: BTreeMap::new(),
            results: read_dir_files(&dir.path().join("results"), 4, &mut BTreeMap::new()),
            too_large: BTreeMap::new(),
        };
        report.too_large.insert("big".into(), 6);
        let mut reader = Reader::default();
        for l in report.to_lines() {
            assert_eq!(reader.line(&l), Line::Hidden);
        }
        let read = reader.take().expect("report");
        assert_eq!(read.results.get("small").map(String::as_str), Some("abc"));
        assert!(!read.results.contains_key("big"));
    }

    #[test]
    fn a_step_over_its_timeout_is_killed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = Entrypoint {
            post_file: dir.path().join("out"),
            timeout: Some(Duration::from_millis(200)),
            command: vec!["sleep".into(), "10".into()],
            ..Entrypoint::default()
        };
        let started = Instant::now();
        assert_eq!(run(&e), 137);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(dir.path().join("out.err").exists());
    }
}
