//! Build arguments and environment in scope while a stage is built.

use std::collections::{BTreeMap, BTreeSet};

use crate::dockerfile::{ArgDecl, Dockerfile, DockerfileError, Resolved, expand};

/// ARGs Docker passes through to RUN when given as build args, without an `ARG` line, and
/// never keeps in the image.
const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Whether `name` is one of Docker's predefined proxy ARGs.
pub fn is_proxy_arg(name: &str) -> bool {
    PROXY_ARGS.contains(&name)
}

pub use crate::image::Platform;

/// The automatic ARGs for `platform` with `prefix` (`TARGET` or `BUILD`).
fn platform_args(platform: &Platform, prefix: &str) -> [(String, String); 4] {
    [
        (format!("{prefix}PLATFORM"), platform.to_string()),
        (format!("{prefix}OS"), platform.os.clone()),
        (format!("{prefix}ARCH"), platform.architecture.clone()),
        (
            format!("{prefix}VARIANT"),
            platform.variant.clone().unwrap_or_default(),
        ),
    ]
}

/// What `$VAR` can see at a point in a stage: the base image's `Env`, `ENV`s so far, and the
/// `ARG`s declared so far (with `--build-arg` values).
#[derive(Debug, Clone, Default)]
pub struct Vars {
    build_args: BTreeMap<String, String>,
    /// The global scope's values (global ARGs and the automatic platform ARGs): what a
    /// stage's `ARG NAME` without a default takes.
    globals: BTreeMap<String, Option<String>>,
    /// `ENV` (and the base image's `Env`) in the image's order.
    env: Vec<(String, String)>,
    /// ARGs declared in this scope, in order; `None` when declared without any value.
    args: Vec<(String, Option<String>)>,
    in_stage: bool,
    used: BTreeSet<String>,
}

impl Vars {
    /// Variables at the start of a stage: the base image's `Env` (`K=V`), global args
    /// re-declared in the stage only once the stage declares them. Uses the host's platform
    /// for the automatic platform ARGs.
    pub fn for_stage(
        build_args: &BTreeMap<String, String>,
        global_args: &[ArgDecl],
        base_env: &[String],
    ) -> Self {
        Self::global(build_args, global_args).stage(base_env)
    }

    /// Variables for expanding `FROM` lines: global args with `--build-arg` values, the host
    /// as both target and build platform. Defaults are expanded here; one that cannot be is
    /// kept as written (use [`Vars::for_build`] to get the error).
    pub fn global(build_args: &BTreeMap<String, String>, global_args: &[ArgDecl]) -> Self {
        let host = Platform::host();
        Self::global_for(build_args, global_args, &host, &host)
    }

    /// [`Vars::global`] for a given target and build platform.
    pub fn global_for(
        build_args: &BTreeMap<String, String>,
        global_args: &[ArgDecl],
        target: &Platform,
        build: &Platform,
    ) -> Self {
        let mut vars = Self::empty_global(build_args, target, build);
        for decl in global_args {
            let default = decl.default.as_ref().map(|d| {
                let lookup = |n: &str| vars.get(n).map(str::to_owned);
                expand::expand_word(d, '\\', &lookup).unwrap_or_else(|_| d.clone())
            });
            vars.declare(&decl.name, default);
        }
        vars
    }

    /// The global scope of `df`: its ARGs before the first `FROM`, resolved in order (their
    /// defaults may use earlier ones), `--build-arg` values, the platform ARGs.
    pub fn for_build(
        df: &Dockerfile,
        build_args: &BTreeMap<String, String>,
        target: &Platform,
        build: &Platform,
    ) -> Result<Self, DockerfileError> {
        let mut vars = Self::empty_global(build_args, target, build);
        for instruction in &df.global_instructions {
            let resolved = instruction.resolve(&vars)?;
            vars.apply(&resolved);
        }
        Ok(vars)
    }

    fn empty_global(
        build_args: &BTreeMap<String, String>,
        target: &Platform,
        build: &Platform,
    ) -> Self {
        let globals = platform_args(target, "TARGET")
            .into_iter()
            .chain(platform_args(build, "BUILD"))
            .map(|(k, v)| (k, Some(v)))
            .collect();
        Vars {
            build_args: build_args.clone(),
            globals,
            ..Vars::default()
        }
    }

    /// The scope at the start of a stage, entered from this global scope: the base image's
    /// `Env` (`K=V`), no ARGs until the stage declares them.
    pub fn stage(&self, base_env: &[String]) -> Self {
        let env = base_env
            .iter()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (kv.clone(), String::new()),
            })
            .collect();
        Vars {
            build_args: self.build_args.clone(),
            globals: self.globals.clone(),
            env,
            args: Vec::new(),
            in_stage: true,
            used: self.used.clone(),
        }
    }

    /// The value `$name` expands to.
    pub fn get(&self, name: &str) -> Option<&str> {
        if let Some((_, v)) = self.env.iter().rev().find(|(k, _)| k == name) {
            return Some(v);
        }
        if let Some((_, v)) = self.args.iter().rev().find(|(k, _)| k == name) {
            return v.as_deref();
        }
        if !self.in_stage
            && let Some(v) = self.globals.get(name)
        {
            return v.as_deref();
        }
        if is_proxy_arg(name) {
            return self.build_args.get(name).map(String::as_str);
        }
        None
    }

    /// A closure for [`expand`] that looks names up here.
    pub fn lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        |name| self.get(name).map(str::to_owned)
    }

    /// Takes an `ARG` or `ENV` into scope (other instructions change nothing).
    pub fn apply(&mut self, resolved: &Resolved) {
        match resolved {
            Resolved::Env(pairs) => {
                for (k, v) in pairs {
                    // Docker updates a variable in place, so `Env` keeps its first position.
                    match self.env.iter_mut().find(|(name, _)| name == k) {
                        Some(slot) => slot.1.clone_from(v),
                        None => self.env.push((k.clone(), v.clone())),
                    }
                }
            }
            Resolved::Arg(decls) => {
                for decl in decls {
                    self.declare(&decl.name, decl.default.clone());
                }
            }
            _ => {}
        }
    }

    /// `ARG name[=default]`: a build arg wins over the default, which wins over the global
    /// scope's value.
    fn declare(&mut self, name: &str, default: Option<String>) {
        let value = match self.build_args.get(name) {
            Some(v) => {
                self.used.insert(name.to_owned());
                Some(v.clone())
            }
            None => default.or_else(|| self.globals.get(name).cloned().flatten()),
        };
        if !self.in_stage {
            self.globals.insert(name.to_owned(), value.clone());
        }
        match self.args.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value,
            None => self.args.push((name.to_owned(), value)),
        }
    }

    /// The environment a RUN sees: `ENV` values plus declared `ARG`s (args are not kept in
    /// the image), as `K=V` in Docker's order.
    pub fn run_env(&self) -> Vec<String> {
        let shadowed = |k: &str| self.env.iter().any(|(e, _)| e == k);
        let declared = |k: &str| self.args.iter().any(|(a, _)| a == k);
        let args = self
            .args
            .iter()
            .filter(|(k, _)| !shadowed(k))
            .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)));
        let proxies = self
            .build_args
            .iter()
            .filter(|(k, _)| is_proxy_arg(k) && !shadowed(k) && !declared(k));
        self.image_env()
            .into_iter()
            .chain(args.chain(proxies).map(|(k, v)| format!("{k}={v}")))
            .collect()
    }

    /// The `ENV` part only, as the image config's `Env` keeps it.
    pub fn image_env(&self) -> Vec<String> {
        self.env.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    /// Build args an `ARG` in this scope (or the global scope it came from) declared.
    pub fn used_args(&self) -> &BTreeSet<String> {
        &self.used
    }
}

/// Build args no `ARG` in the global scope or in `stages` declares (Docker warns "One or more
/// build-args [...] were not consumed"); the predefined proxy args never count.
pub fn unconsumed_build_args(
    df: &Dockerfile,
    build_args: &BTreeMap<String, String>,
    stages: &[usize],
) -> Vec<String> {
    let declared: BTreeSet<String> = df
        .global_args
        .iter()
        .map(|a| a.name.clone())
        .chain(
            stages
                .iter()
                .filter_map(|&i| df.stages.get(i))
                .flat_map(|s| s.instructions.iter())
                .flat_map(|i| i.arg_names()),
        )
        .collect();
    build_args
        .keys()
        .filter(|k| !is_proxy_arg(k) && !declared.contains(k.as_str()))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(name: &str, default: Option<&str>) -> ArgDecl {
        ArgDecl {
            name: name.into(),
            default: default.map(Into::into),
        }
    }

    fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn target() -> Platform {
        Platform {
            os: "linux".into(),
            architecture: "arm".into(),
            variant: Some("v7".into()),
        }
    }

    fn build() -> Platform {
        Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        }
    }

    #[test]
    fn global_scope_rules() {
        let build_args = args(&[("VERSION", "2"), ("HTTP_PROXY", "http://p")]);
        let globals = [
            decl("VERSION", Some("1")),
            decl("BASE", Some("alpine:$VERSION")),
        ];
        let g = Vars::global_for(&build_args, &globals, &target(), &build());
        let cases: &[(&str, Option<&str>)] = &[
            ("VERSION", Some("2")),
            ("BASE", Some("alpine:2")),
            ("TARGETPLATFORM", Some("linux/arm/v7")),
            ("TARGETARCH", Some("arm")),
            ("TARGETVARIANT", Some("v7")),
            ("BUILDARCH", Some("amd64")),
            ("BUILDVARIANT", Some("")),
            ("HTTP_PROXY", Some("http://p")),
            ("UNKNOWN", None),
        ];
        for (name, want) in cases {
            assert_eq!(g.get(name), *want, "{name}");
        }
        assert!(g.used_args().contains("VERSION"));
    }

    #[test]
    fn stage_scope_rules() {
        let build_args = args(&[("ONLY_BUILD", "b"), ("OVERRIDE", "o")]);
        let globals = [decl("G", Some("g")), decl("OVERRIDE", Some("default"))];
        let g = Vars::global_for(&build_args, &globals, &target(), &build());
        let mut s = g.stage(&["PATH=/bin".to_owned(), "G=from-image".to_owned()]);
        // Globals and platform ARGs are invisible until declared; the image's Env is visible.
        assert_eq!(s.get("TARGETARCH"), None);
        assert_eq!(s.get("OVERRIDE"), None);
        assert_eq!(s.get("G"), Some("from-image"));
        assert_eq!(s.get("PATH"), Some("/bin"));
        s.apply(&Resolved::Arg(vec![
            decl("TARGETARCH", None),
            decl("OVERRIDE", None),
            decl("LOCAL", Some("l")),
            decl("ONLY_BUILD", Some("d")),
            decl("NOTHING", None),
            decl("G", None),
        ]));
        let cases: &[(&str, Option<&str>)] = &[
            ("TARGETARCH", Some("arm")),
            ("OVERRIDE", Some("o")),
            ("LOCAL", Some("l")),
            ("ONLY_BUILD", Some("b")),
            ("NOTHING", None),
            // ENV (here the image's) wins over an ARG of the same name.
            ("G", Some("from-image")),
        ];
        for (name, want) in cases {
            assert_eq!(s.get(name), *want, "{name}");
        }
        s.apply(&Resolved::Env(vec![("LOCAL".into(), "env".into())]));
        assert_eq!(s.get("LOCAL"), Some("env"));
    }

    #[test]
    fn build_arg_only_counts_when_declared() {
        let build_args = args(&[("X", "1")]);
        let g = Vars::global_for(&build_args, &[], &target(), &build());
        let mut s = g.stage(&[]);
        assert_eq!(s.get("X"), None);
        assert!(s.used_args().is_empty());
        s.apply(&Resolved::Arg(vec![decl("X", None)]));
        assert_eq!(s.get("X"), Some("1"));
        assert!(s.used_args().contains("X"));
    }

    #[test]
    fn run_env_order_and_image_env() {
        let build_args = args(&[("https_proxy", "http://p"), ("A", "1")]);
        let g = Vars::global_for(&build_args, &[], &target(), &build());
        let mut s = g.stage(&["PATH=/bin".to_owned()]);
        s.apply(&Resolved::Arg(vec![
            decl("A", None),
            decl("SHADOW", Some("arg")),
        ]));
        s.apply(&Resolved::Env(vec![
            ("SHADOW".into(), "env".into()),
            ("PATH".into(), "/usr/bin".into()),
        ]));
        assert_eq!(s.image_env(), ["PATH=/usr/bin", "SHADOW=env"]);
        assert_eq!(
            s.run_env(),
            ["PATH=/usr/bin", "SHADOW=env", "A=1", "https_proxy=http://p"]
        );
    }

    #[test]
    fn skeleton_constructors_still_work() {
        let v = Vars::for_stage(&args(&[]), &[decl("G", Some("g"))], &["E=1".to_owned()]);
        assert_eq!(v.get("E"), Some("1"));
        assert_eq!(v.get("G"), None);
        let g = Vars::global(&args(&[]), &[decl("G", Some("g"))]);
        assert_eq!(g.get("G"), Some("g"));
        assert_eq!(g.get("BUILDOS"), Some(std::env::consts::OS));
    }

    #[test]
    fn platform_parse_and_display() {
        assert_eq!(Platform::parse("linux/arm/v7").ok(), Some(target()));
        assert_eq!(target().to_string(), "linux/arm/v7");
        for bad in ["linux", "linux/", "/amd64", "linux/arm/", "a/b/c/d"] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
    }
}
