//! Instructions as parsed (raw words) and as resolved (variables expanded, flags checked).

use std::path::Path;
use std::sync::Arc;

use crate::dockerfile::{DockerfileError, Span, Vars};

/// An instruction after `FROM`, as written.
#[derive(Debug, Clone)]
pub struct Instruction {
    /// Where it is.
    pub span: Span,
    /// The instruction as written, continuation lines joined (shown in progress, part of the
    /// cache key); here-document bodies follow on their own lines.
    pub text: String,
    /// Which instruction it is.
    pub kind: Kind,
    /// The raw, unexpanded arguments.
    pub(crate) body: Body,
    /// The Dockerfile's escape character.
    pub(crate) escape: char,
    /// The Dockerfile (for diagnostics).
    pub(crate) path: Arc<Path>,
}

impl Instruction {
    /// Expands variables with Docker's rules for this instruction and checks its flags.
    pub fn resolve(&self, vars: &Vars) -> Result<Resolved, DockerfileError> {
        crate::dockerfile::resolve::resolve(self, vars)
    }

    /// The names an `ARG` declares (none for other instructions).
    pub fn arg_names(&self) -> Vec<String> {
        match (&self.kind, &self.body) {
            (Kind::Arg, Body::Text(text)) => crate::dockerfile::pairs::split(text, self.escape)
                .into_iter()
                .map(|w| w.split_once('=').map_or(w.clone(), |(k, _)| k.to_owned()))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// `COPY --from=` / `RUN --mount=...,from=` values as written (for stage planning).
    pub(crate) fn stage_refs(&self) -> Vec<String> {
        match &self.body {
            Body::Copy { flags, .. } => flags
                .iter()
                .filter(|f| f.name == "from")
                .filter_map(|f| f.value.clone())
                .collect(),
            Body::Command { flags, .. } => flags
                .iter()
                .filter(|f| f.name == "mount")
                .filter_map(|f| f.value.as_deref())
                .flat_map(|v| v.split(','))
                .filter_map(|kv| kv.split_once('='))
                .filter(|(k, _)| k.trim() == "from")
                .map(|(_, v)| v.trim().to_owned())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// An error at this instruction.
    pub(crate) fn error(
        &self,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> DockerfileError {
        DockerfileError {
            path: self.path.to_path_buf(),
            span: self.span,
            message: message.into(),
            hint,
        }
    }
}

/// Which instruction (after `FROM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `RUN`.
    Run,
    /// `COPY`.
    Copy,
    /// `ADD`.
    Add,
    /// `ENV`.
    Env,
    /// `ARG`.
    Arg,
    /// `WORKDIR`.
    Workdir,
    /// `USER`.
    User,
    /// `EXPOSE`.
    Expose,
    /// `LABEL`.
    Label,
    /// `CMD`.
    Cmd,
    /// `ENTRYPOINT`.
    Entrypoint,
    /// `VOLUME`.
    Volume,
    /// `STOPSIGNAL`.
    StopSignal,
    /// `HEALTHCHECK`.
    Healthcheck,
    /// `SHELL`.
    Shell,
    /// `ONBUILD`.
    Onbuild,
    /// `MAINTAINER`.
    Maintainer,
}

impl Kind {
    /// The keyword, upper case.
    pub fn keyword(self) -> &'static str {
        match self {
            Kind::Run => "RUN",
            Kind::Copy => "COPY",
            Kind::Add => "ADD",
            Kind::Env => "ENV",
            Kind::Arg => "ARG",
            Kind::Workdir => "WORKDIR",
            Kind::User => "USER",
            Kind::Expose => "EXPOSE",
            Kind::Label => "LABEL",
            Kind::Cmd => "CMD",
            Kind::Entrypoint => "ENTRYPOINT",
            Kind::Volume => "VOLUME",
            Kind::StopSignal => "STOPSIGNAL",
            Kind::Healthcheck => "HEALTHCHECK",
            Kind::Shell => "SHELL",
            Kind::Onbuild => "ONBUILD",
            Kind::Maintainer => "MAINTAINER",
        }
    }

    /// The flags Docker accepts on it.
    pub fn flags(self) -> &'static [&'static str] {
        match self {
            Kind::Run => &["mount", "network"],
            Kind::Copy => &["from", "chown", "chmod", "link", "parents", "exclude"],
            Kind::Add => &[
                "chown",
                "chmod",
                "link",
                "checksum",
                "keep-git-dir",
                "exclude",
            ],
            Kind::Healthcheck => &[
                "interval",
                "timeout",
                "start-period",
                "start-interval",
                "retries",
            ],
            _ => &[],
        }
    }
}

/// A `--name[=value]` flag as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Flag {
    /// Without the dashes.
    pub name: String,
    /// As written (unexpanded).
    pub value: Option<String>,
    /// Where the flag is.
    pub span: Span,
}

/// An instruction's arguments before expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body {
    /// ENV, LABEL, ARG, WORKDIR, USER, STOPSIGNAL, MAINTAINER: the text after the keyword.
    Text(String),
    /// EXPOSE and shell-form VOLUME: whitespace-separated words.
    Words(Vec<String>),
    /// SHELL and JSON-form VOLUME.
    Json(Vec<String>),
    /// RUN, CMD, ENTRYPOINT.
    Command {
        /// RUN's flags.
        flags: Vec<Flag>,
        /// Shell form: the text after the flags; exec form: the array.
        command: Command,
        /// RUN's here-documents.
        heredocs: Vec<Heredoc>,
        /// The command is a lone heredoc (`RUN <<EOF`), to be run as a script.
        script: bool,
    },
    /// COPY and ADD.
    Copy {
        /// Flags.
        flags: Vec<Flag>,
        /// Path or URL sources (heredoc sources are in `heredocs`).
        sources: Vec<String>,
        /// Destination.
        dest: String,
        /// `COPY <<EOF` sources.
        heredocs: Vec<Heredoc>,
    },
    /// HEALTHCHECK: `None` for `NONE`.
    Healthcheck {
        /// Flags.
        flags: Vec<Flag>,
        /// The check command.
        check: Option<Command>,
    },
    /// ONBUILD: the trigger as written.
    Onbuild(String),
}

/// A command in shell form (run by the stage's `SHELL`) or exec form.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Command {
    /// `RUN echo hi`: the text, run as `SHELL + [text]`.
    Shell(String),
    /// `RUN ["echo", "hi"]`.
    Exec(Vec<String>),
}

/// A here-document attached to RUN or COPY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The name after `<<` (`EOF`); for COPY, the file name.
    pub name: String,
    /// The content: COPY expands it unless the delimiter was quoted; RUN leaves it to the shell.
    pub content: String,
    /// Leading tabs stripped (`<<-`).
    pub strip_tabs: bool,
    /// The delimiter was quoted (`<<'EOF'`), so the content is taken literally.
    pub quoted: bool,
}

/// `RUN --network=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// The default (the host's network, as Kaniko runs).
    #[default]
    Default,
    /// No network at all.
    None,
    /// The host's network.
    Host,
}

/// `RUN --mount=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunMount {
    /// `type=bind`: a path from the context or a stage, read-only unless `rw`.
    Bind {
        /// Mount point.
        target: String,
        /// Path in the source.
        source: String,
        /// Stage or image, else the context.
        from: Option<String>,
        /// Writes allowed (and discarded).
        rw: bool,
    },
    /// `type=cache`: a directory kept between builds.
    Cache {
        /// Mount point.
        target: String,
        /// Cache id (defaults to the target).
        id: String,
        /// `sharing=shared|private|locked`.
        sharing: String,
        /// Read-only.
        readonly: bool,
        /// Path in `from` to seed the cache with.
        source: Option<String>,
        /// Stage to seed from.
        from: Option<String>,
        /// Mode of a new cache directory.
        mode: u32,
        /// Owner of a new cache directory.
        uid: u32,
        /// Group of a new cache directory.
        gid: u32,
    },
    /// `type=tmpfs`.
    Tmpfs {
        /// Mount point.
        target: String,
        /// `size=` in bytes, if given.
        size: Option<u64>,
    },
    /// `type=secret`: a file from `--secret id=...`.
    Secret {
        /// Secret id.
        id: String,
        /// Mount point (`/run/secrets/<id>` by default).
        target: String,
        /// Fail when the secret is not given.
        required: bool,
        /// Mode of the file.
        mode: u32,
        /// Owner.
        uid: u32,
        /// Group.
        gid: u32,
        /// Expose as this environment variable instead (`env=`).
        env: Option<String>,
    },
    /// `type=ssh`: accepted, not forwarded yet.
    Ssh {
        /// Mount point.
        target: String,
    },
}

/// A resolved RUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSpec {
    /// What to run.
    pub command: Command,
    /// `--mount` flags.
    pub mounts: Vec<RunMount>,
    /// `--network`.
    pub network: Network,
    /// Here-documents (a RUN whose command is `<<EOF` runs the heredoc as a script).
    pub heredocs: Vec<Heredoc>,
    /// The command was a lone heredoc (`RUN <<EOF`): `command` is the heredoc's content, to
    /// run with the stage's SHELL (or directly, when it starts with `#!`). Otherwise a shell
    /// command's text carries its heredoc bodies, so `SHELL + [text]` feeds them as input.
    pub script: bool,
}

/// A resolved COPY or ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySpec {
    /// ADD (URLs and local tar archives are unpacked) rather than COPY.
    pub add: bool,
    /// Sources (context-relative patterns, URLs for ADD), expanded.
    pub sources: Vec<String>,
    /// Destination (relative to WORKDIR unless absolute; a trailing `/` means a directory).
    pub dest: String,
    /// `--from=stage|image`.
    pub from: Option<String>,
    /// `--chown=user[:group]` (names resolved against the image's /etc/passwd and /etc/group).
    pub chown: Option<String>,
    /// `--chmod=` as octal.
    pub chmod: Option<u32>,
    /// `--link`.
    pub link: bool,
    /// `--parents`.
    pub parents: bool,
    /// `--exclude=` patterns.
    pub exclude: Vec<String>,
    /// `ADD --checksum=`.
    pub checksum: Option<String>,
    /// `ADD --keep-git-dir`.
    pub keep_git_dir: bool,
    /// `COPY <<EOF /dest` here-documents (each becomes a file named after it).
    pub heredocs: Vec<Heredoc>,
}

/// `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`.
    None,
    /// `HEALTHCHECK [options] CMD ...`.
    Check {
        /// The test, as Docker stores it (`["CMD-SHELL", "..."]` or `["CMD", ...]`).
        test: Vec<String>,
        /// `--interval` in nanoseconds.
        interval: Option<i64>,
        /// `--timeout`.
        timeout: Option<i64>,
        /// `--start-period`.
        start_period: Option<i64>,
        /// `--start-interval`.
        start_interval: Option<i64>,
        /// `--retries`.
        retries: Option<u32>,
    },
}

/// An `ARG name[=default]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    /// The name.
    pub name: String,
    /// The default, expanded.
    pub default: Option<String>,
}

/// An instruction ready to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// `RUN`.
    Run(RunSpec),
    /// `COPY` or `ADD`.
    Copy(CopySpec),
    /// `ENV`: pairs in order.
    Env(Vec<(String, String)>),
    /// `ARG`.
    Arg(Vec<ArgDecl>),
    /// `WORKDIR` (expanded; relative to the previous one unless absolute).
    Workdir(String),
    /// `USER`.
    User(String),
    /// `EXPOSE` ports as `80/tcp`.
    Expose(Vec<String>),
    /// `LABEL` pairs in order.
    Label(Vec<(String, String)>),
    /// `CMD`.
    Cmd(Command),
    /// `ENTRYPOINT`.
    Entrypoint(Command),
    /// `VOLUME` paths.
    Volume(Vec<String>),
    /// `STOPSIGNAL`.
    StopSignal(String),
    /// `HEALTHCHECK`.
    Healthcheck(Healthcheck),
    /// `SHELL`.
    Shell(Vec<String>),
    /// `ONBUILD` (the trigger as written).
    Onbuild(String),
    /// `MAINTAINER`.
    Maintainer(String),
}
