//! The Dockerfile language: parsing with positions, Docker's variable expansion, stage
//! planning and `.dockerignore`. Pure: no file system access beyond what the caller hands in.

pub mod expand;
pub mod glob;
pub mod ignore;
pub mod instruction;
mod lines;
pub mod mount;
pub mod pairs;
mod parser;
pub mod plan;
mod resolve;
pub mod value;
pub mod vars;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::dockerfile::instruction::{
    ArgDecl, Command, CopySpec, Healthcheck, Heredoc, Instruction, Kind, Network, Resolved,
    RunMount, RunSpec,
};
pub use crate::dockerfile::vars::{Platform, Vars};

/// A position in the Dockerfile (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub column: u32,
    /// Byte offset in the source.
    pub offset: usize,
    /// Length in bytes.
    pub len: usize,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone)]
pub struct Dockerfile {
    /// Where it was read from (for diagnostics).
    pub path: PathBuf,
    /// The text.
    pub source: Arc<str>,
    /// The escape character (`\` or a `# escape=` directive's).
    pub escape: char,
    /// The `# syntax=` directive, if any (reported, not followed).
    pub syntax: Option<String>,
    /// `ARG`s before the first `FROM`, defaults as written ([`Vars`] expands them).
    pub global_args: Vec<ArgDecl>,
    /// The `ARG` instructions before the first `FROM` (for [`Vars::for_build`]).
    pub global_instructions: Vec<Instruction>,
    /// Stages in order.
    pub stages: Vec<Stage>,
}

/// One `FROM` and what follows it.
#[derive(Debug, Clone)]
pub struct Stage {
    /// Position among the stages, from 0.
    pub index: usize,
    /// `AS name`, lowercased as Docker does.
    pub name: Option<String>,
    /// The base as written (expand with the global args).
    pub base: String,
    /// `--platform` as written.
    pub platform: Option<String>,
    /// Where the `FROM` is.
    pub span: Span,
    /// The instructions after `FROM`.
    pub instructions: Vec<Instruction>,
}

/// Why a Dockerfile was refused; shows `file:line:col`, what is wrong, and a hint.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}:{}:{}: {message}", path.display(), span.line, span.column)]
pub struct DockerfileError {
    /// The Dockerfile.
    pub path: PathBuf,
    /// Where.
    pub span: Span,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl DockerfileError {
    /// The error and its hint on a second line, as the CLI prints it.
    pub fn report(&self) -> String {
        match &self.hint {
            Some(hint) => format!("{self}\n  hint: {hint}"),
            None => self.to_string(),
        }
    }
}

impl Dockerfile {
    /// Parses `text` read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Self, DockerfileError> {
        parser::parse(path, text)
    }

    /// The stage a name or index (`--target`, `--from`, `FROM stage`) refers to; names are
    /// compared as Docker does, ignoring case.
    pub fn stage(&self, name_or_index: &str) -> Option<&Stage> {
        let name = name_or_index.to_lowercase();
        self.stages
            .iter()
            .find(|s| s.name.as_deref() == Some(name.as_str()))
            .or_else(|| {
                let index: usize = name_or_index.parse().ok()?;
                // Only plain digits count: `+1` or `01` are image names, not indices.
                (index.to_string() == name_or_index).then(|| self.stages.get(index))?
            })
    }

    /// The stage names, in order (for messages).
    pub fn stage_names(&self) -> Vec<String> {
        self.stages
            .iter()
            .map(|s| s.name.clone().unwrap_or_else(|| s.index.to_string()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn parse(text: &str) -> Result<Dockerfile, DockerfileError> {
        Dockerfile::parse(Path::new("Dockerfile"), text)
    }

    fn report(text: &str) -> String {
        match parse(text) {
            Ok(_) => "parsed".to_owned(),
            Err(e) => e.report(),
        }
    }

    /// Resolves every instruction of the last stage in a fresh scope (ARG/ENV applied).
    fn resolve_all(text: &str, build_args: &[(&str, &str)]) -> Vec<Resolved> {
        let df = parse(text).unwrap_or_else(|e| panic!("{}", e.report()));
        let args: BTreeMap<String, String> = build_args
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let host = Platform::host();
        let global = Vars::for_build(&df, &args, &host, &host).unwrap_or_default();
        let mut vars = global.stage(&["PATH=/bin".to_owned()]);
        let Some(stage) = df.stages.last() else {
            return Vec::new();
        };
        stage
            .instructions
            .iter()
            .map(|i| {
                let r = i
                    .resolve(&vars)
                    .unwrap_or_else(|e| panic!("{}", e.report()));
                vars.apply(&r);
                r
            })
            .collect()
    }

    #[test]
    fn stages_spans_and_text() {
        let text = "\u{feff}# syntax=docker/dockerfile:1\nARG V=1\nFROM --platform=$BUILDPLATFORM alpine:$V AS Build\nRUN echo a \\\n  && echo b\n\nfrom build\nCOPY --from=build /a /b\n";
        let df = parse(text).unwrap_or_else(|e| panic!("{}", e.report()));
        assert_eq!(df.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(
            df.global_args,
            [ArgDecl {
                name: "V".into(),
                default: Some("1".into())
            }]
        );
        assert_eq!(df.stages.len(), 2);
        let s0 = &df.stages[0];
        assert_eq!(s0.name.as_deref(), Some("build"));
        assert_eq!(s0.base, "alpine:$V");
        assert_eq!(s0.platform.as_deref(), Some("$BUILDPLATFORM"));
        assert_eq!((s0.span.line, s0.span.column), (3, 1));
        let run = &s0.instructions[0];
        assert_eq!(run.text, "RUN echo a   && echo b");
        assert_eq!((run.span.line, run.span.column), (4, 1));
        assert_eq!(
            &text[run.span.offset..run.span.offset + run.span.len],
            "RUN echo a \\\n  && echo b"
        );
        assert_eq!(df.stage("BUILD").map(|s| s.index), Some(0));
        assert_eq!(df.stage("1").map(|s| s.index), Some(1));
        assert!(df.stage("01").is_none() && df.stage("2").is_none());
    }

    #[test]
    fn resolves_each_instruction() {
        let text = r#"ARG BASE=alpine
FROM $BASE
ARG USER=app
ENV HOME=/home/$USER GREETING="hello world"
ENV LEGACY a b $USER
LABEL "com.example.v"="1.0" desc='a "b"'
WORKDIR ${HOME}/src
USER ${USER}:${USER}
EXPOSE 80 53/udp 8000-8001
VOLUME /data $HOME/v
VOLUME ["/json"]
STOPSIGNAL SIGTERM
CMD ["run", "$HOME"]
ENTRYPOINT exec app $HOME
SHELL ["/bin/bash", "-c"]
ONBUILD RUN echo $HOME
MAINTAINER someone
HEALTHCHECK --interval=30s --retries=3 CMD curl -f http://localhost/ || exit 1
COPY --chown=$USER --chmod=0644 --link a${USER}.txt b\ c /dest/
ADD --checksum=sha256:abc https://example.com/x.tar /x/
"#;
        let r = resolve_all(text, &[("USER", "me")]);
        let expected = vec![
            Resolved::Arg(vec![ArgDecl {
                name: "USER".into(),
                default: Some("app".into()),
            }]),
            Resolved::Env(vec![
                ("HOME".into(), "/home/me".into()),
                ("GREETING".into(), "hello world".into()),
            ]),
            Resolved::Env(vec![("LEGACY".into(), "a b me".into())]),
            Resolved::Label(vec![
                ("com.example.v".into(), "1.0".into()),
                ("desc".into(), "a \"b\"".into()),
            ]),
            Resolved::Workdir("/home/me/src".into()),
            Resolved::User("me:me".into()),
            Resolved::Expose(vec![
                "80/tcp".into(),
                "53/udp".into(),
                "8000/tcp".into(),
                "8001/tcp".into(),
            ]),
            Resolved::Volume(vec!["/data".into(), "/home/me/v".into()]),
            Resolved::Volume(vec!["/json".into()]),
            Resolved::StopSignal("SIGTERM".into()),
            Resolved::Cmd(Command::Exec(vec!["run".into(), "$HOME".into()])),
            Resolved::Entrypoint(Command::Shell("exec app $HOME".into())),
            Resolved::Shell(vec!["/bin/bash".into(), "-c".into()]),
            Resolved::Onbuild("RUN echo $HOME".into()),
            Resolved::Maintainer("someone".into()),
            Resolved::Healthcheck(Healthcheck::Check {
                test: vec![
                    "CMD-SHELL".into(),
                    "curl -f http://localhost/ || exit 1".into(),
                ],
                interval: Some(30_000_000_000),
                timeout: None,
                start_period: None,
                start_interval: None,
                retries: Some(3),
            }),
            Resolved::Copy(CopySpec {
                add: false,
                // As Docker: shell-form COPY splits at every space, escaped or not.
                sources: vec!["ame.txt".into(), "b".into(), "c".into()],
                dest: "/dest/".into(),
                from: None,
                chown: Some("me".into()),
                chmod: Some(0o644),
                link: true,
                parents: false,
                exclude: vec![],
                checksum: None,
                keep_git_dir: false,
                heredocs: vec![],
            }),
            Resolved::Copy(CopySpec {
                add: true,
                sources: vec!["https://example.com/x.tar".into()],
                dest: "/x/".into(),
                from: None,
                chown: None,
                chmod: None,
                link: false,
                parents: false,
                exclude: vec![],
                checksum: Some("sha256:abc".into()),
                keep_git_dir: false,
                heredocs: vec![],
            }),
        ];
        assert_eq!(r.len(), expected.len());
        for (got, want) in r.iter().zip(&expected) {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn copy_json_form_and_heredoc() {
        let text = "FROM a\nARG N=x\nCOPY [\"a b\", \"/x/\"]\nCOPY <<EOF /f\nval=$N\nEOF\nCOPY <<'EOF' /g\nval=$N\nEOF\n";
        let r = resolve_all(text, &[]);
        let Resolved::Copy(json) = &r[1] else {
            panic!("{r:?}")
        };
        assert_eq!(
            (json.sources.as_slice(), json.dest.as_str()),
            (&["a b".to_owned()][..], "/x/")
        );
        let Resolved::Copy(doc) = &r[2] else {
            panic!("{r:?}")
        };
        assert_eq!(doc.heredocs[0].content, "val=x\n");
        assert_eq!(doc.heredocs[0].name, "EOF");
        assert!(doc.sources.is_empty());
        let Resolved::Copy(quoted) = &r[3] else {
            panic!("{r:?}")
        };
        assert_eq!(quoted.heredocs[0].content, "val=$N\n");
    }

    #[test]
    fn run_forms() {
        let text = "FROM a\nRUN [\"echo\", \"hi\"]\nRUN --network=none --mount=type=cache,target=/c echo $X\nRUN <<EOF\necho one\necho two\nEOF\nRUN cat <<EOF > /f\nhello\nEOF\n";
        let r = resolve_all(text, &[]);
        let runs: Vec<&RunSpec> = r
            .iter()
            .filter_map(|r| match r {
                Resolved::Run(s) => Some(s),
                _ => None,
            })
            .collect();
        assert_eq!(
            runs[0].command,
            Command::Exec(vec!["echo".into(), "hi".into()])
        );
        assert_eq!(runs[1].command, Command::Shell("echo $X".into()));
        assert_eq!(runs[1].network, Network::None);
        assert!(matches!(&runs[1].mounts[..], [RunMount::Cache { id, .. }] if id == "/c"));
        assert!(runs[2].script);
        assert_eq!(
            runs[2].command,
            Command::Shell("echo one\necho two\n".into())
        );
        assert!(!runs[3].script);
        assert_eq!(
            runs[3].command,
            Command::Shell("cat <<EOF > /f\nhello\nEOF".into())
        );
        assert_eq!(runs[3].heredocs[0].content, "hello\n");
    }

    #[test]
    fn required_variable_reports_its_name() {
        let df =
            parse("FROM a\nWORKDIR ${DIR:?set DIR}\n").unwrap_or_else(|e| panic!("{}", e.report()));
        let vars = Vars::global(&BTreeMap::new(), &[]).stage(&[]);
        let err = df.stages[0].instructions[0].resolve(&vars).map(drop);
        assert_eq!(
            err.map_err(|e| e.message),
            Err("WORKDIR cannot expand `${DIR:?set DIR}`: DIR: set DIR".into())
        );
    }

    #[test]
    fn refusals() {
        let cases: &[(&str, &str)] = &[
            ("FROM a\nRUNN x\n", "unknown instruction `RUNN`"),
            ("RUN x\nFROM a\n", "RUN comes before the first FROM"),
            (
                "FROM a\nCOPY --form=x a b\n",
                "unknown flag --form for COPY",
            ),
            (
                "FROM a AS x\nFROM b AS X\n",
                "stage name `x` is already used by stage 0 (line 1)",
            ),
            (
                "FROM later\nFROM a AS later\n",
                "stage `later` is defined later (line 2)",
            ),
            ("FROM self AS self\n", "stage `self` starts from itself"),
            ("FROM a\nCOPY --chmod=rwx a b\n", "--chmod of COPY is wrong"),
            ("FROM a\nEXPOSE 80/tpc\n", "EXPOSE cannot use this port"),
            (
                "FROM a\nHEALTHCHECK --interval=5x CMD true\n",
                "--interval of HEALTHCHECK is wrong",
            ),
            (
                "FROM a\nHEALTHCHECK --retries=-1 CMD true\n",
                "--retries of HEALTHCHECK is wrong",
            ),
            (
                "FROM a\nSHELL /bin/bash -c\n",
                "SHELL must be written as a JSON array",
            ),
            (
                "FROM a\nONBUILD ONBUILD RUN x\n",
                "ONBUILD ONBUILD is not allowed",
            ),
            ("FROM a\nONBUILD FROM b\n", "ONBUILD FROM is not allowed"),
            (
                "FROM a\nONBUILD MAINTAINER me\n",
                "ONBUILD MAINTAINER is not allowed",
            ),
            (
                "FROM a\nRUN --mount=type=volume,target=/x true\n",
                "--mount of RUN is wrong",
            ),
            (
                "FROM a\nRUN --mount=type=cache,tagret=/x true\n",
                "--mount of RUN is wrong",
            ),
            (
                "FROM a\nRUN --network=bridge true\n",
                "--network of RUN is wrong",
            ),
            (
                "FROM a\nRUN cat <<EOF\nno end\n",
                "here-document <<EOF has no closing line",
            ),
            ("FROM a\nENV a=1 b\n", "ENV cannot be read"),
            ("ARG x\n", "the Dockerfile has no FROM instruction"),
        ];
        for (text, want) in cases {
            let got = report(text);
            assert!(got.contains(want), "{text:?}: {got}");
        }
    }

    #[test]
    fn diagnostics() {
        let cases = [
            ("unknown_instruction", "FROM alpine\n\n  RUNN echo hi\n"),
            ("bad_flag", "FROM alpine\nCOPY --form=build /a /b\n"),
            ("bad_heredoc", "FROM alpine\nRUN <<EOF\necho hi\nEO\n"),
            ("before_from", "# comment\nRUN echo\nFROM alpine\n"),
            ("library_error", "FROM alpine\nCOPY onlyone\n"),
        ];
        for (name, text) in cases {
            insta::assert_snapshot!(name, report(text));
        }
    }
}
