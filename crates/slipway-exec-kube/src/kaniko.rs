//! Steps that run Kaniko's executor image run slipway's builder inside their Pod instead: the
//! container takes slipway's image, and `slipway build` takes the step's Kaniko flags. The
//! paths the flags name are the step's own, so nothing is translated; the builder works as
//! Kaniko does where it may not mount (its container's `/` becomes the image being built).

use slipway_engine::executor::{Builtin, StepPlan};
use slipway_model::kaniko;

use crate::pod::BIN;

/// Where the builder keeps its blobs and cache: Tekton's home, an emptyDir mount the build
/// leaves alone (a mount point), unless the step names its own `--cache-dir`.
const CACHE_DIR: &str = "/tekton/home/.cache/slipway-build";

/// True when slipway's builder stands in for this step.
pub(crate) fn stands_in(step: &StepPlan) -> bool {
    step.builtin == Some(Builtin::ImageBuilder) && !step.skipped
}

/// The builder's command line for the step: slipway through its own loader, `build`, then
/// the step's flags (after `/kaniko/executor` in `command`, then `args`, as the image runs
/// them), with Kaniko's default context and the cache placed where the build leaves it be.
pub(crate) fn command_line(step: &StepPlan) -> Vec<String> {
    let given = kaniko::executor_flags(&step.command, &step.args);
    let names = |flags: &[&str]| {
        given.iter().any(|a| {
            let flag = a.split_once('=').map_or(a.as_str(), |(f, _)| f);
            flags.contains(&flag)
        })
    };
    let mut line = vec![
        format!("{BIN}/ld.so"),
        "--library-path".to_string(),
        format!("{BIN}/lib"),
        format!("{BIN}/slipway"),
        "build".to_string(),
    ];
    if !names(&["--context", "-c"]) {
        line.push(format!("--context=dir://{}", kaniko::DEFAULT_CONTEXT));
    }
    if !names(&["--cache-dir"]) {
        line.push(format!("--cache-dir={CACHE_DIR}"));
    }
    line.extend(given);
    line
}

/// Variables the builder needs beside the step's: Kaniko's credentials directory unless the
/// step names another, and a data directory under Tekton's home.
pub(crate) fn env(step: &StepPlan) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if !step.env.iter().any(|(k, _)| k == "DOCKER_CONFIG") {
        out.push((
            "DOCKER_CONFIG".to_string(),
            kaniko::DOCKER_CONFIG_DIR.to_string(),
        ));
    }
    out.push((
        "SLIPWAY_HOME".to_string(),
        "/tekton/home/.slipway".to_string(),
    ));
    out
}

/// The notice a TaskRun with such steps gets.
pub(crate) fn notice(step: &StepPlan) -> String {
    format!(
        "step `{}`: slipway's builder stands in for {} (in slipway's image)",
        step.name,
        step.image.as_deref().unwrap_or("Kaniko's executor")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(command: &[&str], args: &[&str]) -> StepPlan {
        StepPlan {
            name: "build".into(),
            image: Some("gcr.io/kaniko-project/executor:v1.23.2".into()),
            command: command.iter().map(|s| s.to_string()).collect(),
            args: args.iter().map(|s| s.to_string()).collect(),
            builtin: Some(Builtin::ImageBuilder),
            ..StepPlan::default()
        }
    }

    #[test]
    fn the_steps_flags_follow_the_builder_with_kanikos_defaults() {
        let line = command_line(&step(&[], &["--destination=r/x:1", "--no-push"]));
        assert_eq!(
            line,
            [
                "/tekton/bin/ld.so",
                "--library-path",
                "/tekton/bin/lib",
                "/tekton/bin/slipway",
                "build",
                "--context=dir:///workspace/",
                "--cache-dir=/tekton/home/.cache/slipway-build",
                "--destination=r/x:1",
                "--no-push",
            ]
        );
        let line = command_line(&step(
            &["/kaniko/executor", "--context", "/src"],
            &["--cache-dir=/cache"],
        ));
        assert_eq!(
            &line[5..],
            ["--context", "/src", "--cache-dir=/cache"],
            "flags in `command` come first, and given ones are not doubled"
        );
    }

    #[test]
    fn credentials_are_read_where_kaniko_reads_them_unless_the_step_says() {
        let e = env(&step(&[], &[]));
        assert!(e.contains(&("DOCKER_CONFIG".into(), "/kaniko/.docker".into())));
        let mut own = step(&[], &[]);
        own.env.push(("DOCKER_CONFIG".into(), "/creds".into()));
        assert!(!env(&own).iter().any(|(k, _)| k == "DOCKER_CONFIG"));
    }
}
