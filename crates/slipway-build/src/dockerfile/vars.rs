//! Build arguments and environment in scope while a stage is built.

use std::collections::BTreeMap;

use crate::dockerfile::{ArgDecl, Resolved};

/// What `$VAR` can see at a point in a stage: the base image's `Env`, `ENV`s so far, and the
/// `ARG`s declared so far (with `--build-arg` values).
#[derive(Debug, Clone, Default)]
pub struct Vars {
    // helper A
}

impl Vars {
    /// Variables at the start of a stage: the base image's `Env` (`K=V`), global args
    /// re-declared in the stage only once the stage declares them.
    pub fn for_stage(
        build_args: &BTreeMap<String, String>,
        global_args: &[ArgDecl],
        base_env: &[String],
    ) -> Self {
        let _ = (build_args, global_args, base_env);
        unimplemented!("helper A")
    }

    /// Variables for expanding `FROM` lines: global args with `--build-arg` values.
    pub fn global(build_args: &BTreeMap<String, String>, global_args: &[ArgDecl]) -> Self {
        let _ = (build_args, global_args);
        unimplemented!("helper A")
    }

    /// The value `$name` expands to.
    pub fn get(&self, name: &str) -> Option<&str> {
        let _ = name;
        unimplemented!("helper A")
    }

    /// Takes an `ARG` or `ENV` into scope (other instructions change nothing).
    pub fn apply(&mut self, resolved: &Resolved) {
        let _ = resolved;
        unimplemented!("helper A")
    }

    /// The environment a RUN sees: `ENV` values plus declared `ARG`s (args are not kept in
    /// the image), as `K=V` in Docker's order.
    pub fn run_env(&self) -> Vec<String> {
        unimplemented!("helper A")
    }

    /// The `ENV` part only, as the image config's `Env` keeps it.
    pub fn image_env(&self) -> Vec<String> {
        unimplemented!("helper A")
    }
}
