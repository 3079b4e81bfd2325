//! `slipway entrypoint` (hidden): the first process of every step container under the
//! Kubernetes executor; the logic is `slipway_exec_kube::entrypoint`.

use slipway_exec_kube::entrypoint::{self, Entrypoint};

use crate::cli::EntrypointArgs;

/// Runs the step (or copies slipway's files, in the init container); returns the exit code.
pub fn entrypoint(args: EntrypointArgs) -> i32 {
    if let (Some(from), Some(to)) = (&args.copy_from, &args.copy_to) {
        return match entrypoint::install(from, to) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: {}", crate::error::chain(&e));
                1
            }
        };
    }
    let Some(post_file) = args.post_file else {
        eprintln!("error: slipway entrypoint needs --post-file (or --copy-from and --copy-to)");
        return 2;
    };
    entrypoint::run(&Entrypoint {
        wait_file: args.wait_file,
        ready_file: args.ready_file,
        post_file,
        step_dir: args.step_dir,
        step_index: args.step_index,
        results_dir: args.results_dir,
        timeout: args.timeout,
        continue_on_error: args.on_error.as_deref() == Some("continue"),
        script: args.script,
        scripts_dir: args.scripts_dir,
        stdout_path: args.stdout_path,
        stderr_path: args.stderr_path,
        max_result_bytes: args.max_result_bytes,
        command: args.command,
    })
}
