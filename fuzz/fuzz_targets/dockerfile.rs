//! A Dockerfile: parsing, resolving every instruction (variable expansion, flags, heredocs,
//! mounts) with the build args the input's `# arg NAME=VALUE` comment lines give, planning the
//! stages, and `.dockerignore` patterns taken from the same text. None of it may panic.
#![no_main]

use std::collections::BTreeMap;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use slipway_build::dockerfile::ignore::{Patterns, glob_match};
use slipway_build::dockerfile::{Dockerfile, Platform, Vars, plan};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(patterns) = Patterns::parse(text) {
        for path in ["a", "a/b", "src/x.rs", ".git/config", "docs/a/b/draft.md"] {
            let _ = patterns.is_excluded(path);
            let _ = patterns.may_include_below(path);
        }
    }
    for line in text.lines().take(8) {
        let _ = glob_match(line, "src/main.rs");
    }
    let mut args = BTreeMap::new();
    for line in text.lines().filter_map(|l| l.strip_prefix("# arg ")).take(8) {
        let (k, v) = line.split_once('=').unwrap_or((line, ""));
        args.insert(k.to_string(), v.to_string());
    }
    let Ok(df) = Dockerfile::parse(Path::new("Dockerfile"), text) else {
        return;
    };
    let host = Platform::host();
    let Ok(global) = Vars::for_build(&df, &args, &host, &host) else {
        return;
    };
    let _ = plan::stages_for_target(&df, None, &global);
    for stage in &df.stages {
        let _ = plan::dependencies(&df, stage.index, &global);
        let mut vars = global.stage(&["PATH=/bin".to_string()]);
        for instruction in stage.instructions.iter().take(64) {
            if let Ok(resolved) = instruction.resolve(&vars) {
                vars.apply(&resolved);
            }
        }
        let _ = vars.run_env();
    }
});
