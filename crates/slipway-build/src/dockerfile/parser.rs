//! From text to [`Dockerfile`]: the parser crate's tree mapped onto ours, and what Docker
//! refuses before building (unknown instructions and flags, misplaced or misnamed stages,
//! values that can never be right).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use parse_dockerfile as pd;
use slipway_model::suggest::did_you_mean;

use crate::dockerfile::instruction::{Body, Flag, Kind};
use crate::dockerfile::lines::{self, LineError, Logical};
use crate::dockerfile::{
    ArgDecl, Command, Dockerfile, DockerfileError, Heredoc, Instruction, Span, Stage, expand,
    mount, pairs, value,
};

/// Every instruction keyword.
pub(crate) const KEYWORDS: [&str; 18] = [
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "MAINTAINER",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
];

/// The Dockerfile being parsed, for positions and errors.
struct Source<'a> {
    path: Arc<Path>,
    /// The text after any BOM.
    text: &'a str,
    /// Bytes of BOM before `text`.
    bom: usize,
    escape: char,
}

impl Source<'_> {
    fn span(&self, start: usize, end: usize) -> Span {
        let start = start.min(self.text.len());
        let before = &self.text[..start];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Span {
            line: u32::try_from(before.matches('\n').count() + 1).unwrap_or(u32::MAX),
            column: u32::try_from(before[line_start..].chars().count() + 1).unwrap_or(u32::MAX),
            offset: self.bom + start,
            len: end.saturating_sub(start),
        }
    }

    fn error(
        &self,
        span: Span,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> DockerfileError {
        DockerfileError {
            path: self.path.to_path_buf(),
            span,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    fn error_at(
        &self,
        start: usize,
        end: usize,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> DockerfileError {
        self.error(self.span(start, end), message, hint)
    }
}

/// Parses `text` read from `path`.
pub(crate) fn parse(path: &Path, text: &str) -> Result<Dockerfile, DockerfileError> {
    let bom = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let body = &text[bom..];
    let escape = lines::escape_directive(body);
    let src = Source {
        path: Arc::from(path),
        text: body,
        bom,
        escape,
    };
    let logicals = lines::scan(body, escape).map_err(|e| match e {
        LineError::UnclosedHeredoc { name, offset } => src.error_at(
            offset,
            offset + name.len() + 2,
            format!("here-document <<{name} has no closing line"),
            format!("end it with a line holding only `{name}`"),
        ),
    })?;
    precheck(&src, &logicals)?;
    let masked = lines::mask_run_heredocs(body, &logicals);
    let parsed = pd::parse(&masked).map_err(|e| library_error(&src, &e))?;
    let by_start: HashMap<usize, &Logical> = logicals.iter().map(|l| (l.start, l)).collect();

    let mut global_args = Vec::new();
    let mut global_instructions = Vec::new();
    let globals = parsed
        .instructions
        .iter()
        .take_while(|i| !matches!(i, pd::Instruction::From(_)));
    for arg in globals {
        let ins = instruction(&src, &by_start, arg)?;
        if let Body::Text(text) = &ins.body {
            let decls = pairs::args(text, escape)
                .map_err(|e| ins.error(format!("ARG cannot be read: {e}"), None))?;
            global_args.extend(
                decls
                    .into_iter()
                    .map(|(name, default)| ArgDecl { name, default }),
            );
        }
        global_instructions.push(ins);
    }
    let mut stages = Vec::new();
    for (index, stage) in parsed.stages().enumerate() {
        stages.push(convert_stage(&src, &by_start, index, &stage)?);
    }
    check_stage_order(&src, &stages)?;
    Ok(Dockerfile {
        path: path.to_path_buf(),
        source: Arc::from(text),
        escape,
        syntax: parsed
            .parser_directives
            .syntax
            .as_ref()
            .map(|d| d.value.value.to_owned()),
        global_args,
        global_instructions,
        stages,
    })
}

/// The first word of `text` and the rest after it (leading whitespace dropped).
fn split_word(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    (&text[..end], text[end..].trim_start())
}

/// `text` without its leading words that `skip` accepts.
fn skip_words(mut text: &str, mut skip: impl FnMut(&str) -> bool) -> &str {
    loop {
        let (word, rest) = split_word(text);
        if word.is_empty() || !skip(word) {
            return text.trim_start();
        }
        text = rest;
    }
}

/// What Docker refuses by looking at lines alone: unknown instructions, instructions before
/// the first FROM, SHELL not in JSON form, ONBUILD of what cannot be deferred, stage names.
fn precheck(src: &Source<'_>, logicals: &[Logical]) -> Result<(), DockerfileError> {
    let mut seen_from = false;
    let mut names: HashMap<String, (usize, u32)> = HashMap::new();
    let mut stage = 0;
    for l in logicals {
        let (word, rest) = split_word(&l.joined);
        let keyword = word.to_ascii_uppercase();
        let here = src.span(l.start, l.start + word.len());
        if !KEYWORDS.contains(&keyword.as_str()) {
            return Err(src.error(
                here,
                format!("unknown instruction `{word}`"),
                did_you_mean(
                    &keyword,
                    &KEYWORDS,
                    format!("instructions are {}", KEYWORDS.join(", ")),
                ),
            ));
        }
        match keyword.as_str() {
            "FROM" => {
                seen_from = true;
                let words: Vec<&str> = skip_words(rest, |w| w.starts_with("--"))
                    .split_whitespace()
                    .collect();
                if let [_, as_, name] = words.as_slice()
                    && as_.eq_ignore_ascii_case("AS")
                {
                    let name = name.to_lowercase();
                    if let Some((first, line)) = names.get(&name) {
                        return Err(src.error(
                            here,
                            format!(
                                "stage name `{name}` is already used by stage {first} (line {line})"
                            ),
                            "give each stage its own name",
                        ));
                    }
                    names.insert(name, (stage, here.line));
                }
                stage += 1;
            }
            "ARG" => {}
            _ if !seen_from => {
                return Err(src.error(
                    here,
                    format!("{keyword} comes before the first FROM"),
                    "only ARG may come before FROM: start a stage with `FROM <image>` first",
                ));
            }
            "SHELL" if !rest.starts_with('[') => {
                return Err(src.error(
                    here,
                    "SHELL must be written as a JSON array",
                    r#"write it as SHELL ["/bin/bash", "-c"]"#,
                ));
            }
            "ONBUILD" => {
                let inner = split_word(rest).0.to_ascii_uppercase();
                if matches!(inner.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
                    return Err(src.error(
                        here,
                        format!("ONBUILD {inner} is not allowed"),
                        "ONBUILD takes any instruction but ONBUILD, FROM and MAINTAINER",
                    ));
                }
            }
            _ => {}
        }
    }
    if !seen_from {
        let end = src.text.len();
        return Err(src.error_at(
            end,
            end,
            "the Dockerfile has no FROM instruction",
            "start a stage with `FROM <image>`",
        ));
    }
    Ok(())
}

/// A parser crate error, at its position, in our words where we can.
fn library_error(src: &Source<'_>, e: &pd::Error) -> DockerfileError {
    let (line, column) = (e.line().max(1), e.column().max(1));
    let offset = src
        .text
        .split_inclusive('\n')
        .take(line - 1)
        .map(str::len)
        .sum::<usize>()
        + column
        - 1;
    let mut message = format!("{e:#}");
    if let Some(first) = message.get(..1)
        && first.chars().all(|c| c.is_ascii_uppercase())
        && message
            .get(1..2)
            .is_some_and(|c| c.chars().all(|c| c.is_ascii_lowercase()))
    {
        message = first.to_ascii_lowercase() + &message[1..];
    }
    src.error_at(
        offset,
        offset,
        message,
        "see https://docs.docker.com/reference/dockerfile/ for the instruction's form",
    )
}

fn convert_stage(
    src: &Source<'_>,
    by_start: &HashMap<usize, &Logical>,
    index: usize,
    stage: &pd::Stage<'_, '_>,
) -> Result<Stage, DockerfileError> {
    let from = stage.from;
    let start = from.from.span.start;
    let end = by_start.get(&start).map_or(from.image.span.end, |l| l.end);
    let span = src.span(start, end);
    let mut platform = None;
    for flag in &from.options {
        if flag.name.value != "platform" {
            return Err(unknown_flag(src, "FROM", &["platform"], flag));
        }
        platform = Some(need_value(src, flag)?);
    }
    let instructions = stage
        .instructions
        .iter()
        .map(|i| instruction(src, by_start, i))
        .collect::<Result<_, _>>()?;
    Ok(Stage {
        index,
        name: from.as_.as_ref().map(|(_, n)| n.value.to_lowercase()),
        base: from.image.value.to_string(),
        platform,
        span,
        instructions,
    })
}

/// `FROM x` where `x` names this stage or a later one: Docker would pull an image named
/// like the stage, which is never what was meant.
fn check_stage_order(src: &Source<'_>, stages: &[Stage]) -> Result<(), DockerfileError> {
    for stage in stages {
        let base = stage.base.to_lowercase();
        let later = stages[stage.index..]
            .iter()
            .find(|s| s.name.as_deref() == Some(base.as_str()));
        if let Some(target) = later {
            let (message, hint) = if target.index == stage.index {
                (
                    format!("stage `{base}` starts from itself"),
                    "name an image or an earlier stage".to_owned(),
                )
            } else {
                (
                    format!(
                        "stage `{base}` is defined later (line {})",
                        target.span.line
                    ),
                    format!("move stage `{base}` above this FROM"),
                )
            };
            return Err(src.error(stage.span, message, hint));
        }
    }
    Ok(())
}

fn unknown_flag(
    src: &Source<'_>,
    keyword: &str,
    allowed: &[&str],
    flag: &pd::Flag<'_>,
) -> DockerfileError {
    let span = flag.flag_span();
    let name = &flag.name.value;
    let dashed: Vec<String> = allowed.iter().map(|a| format!("--{a}")).collect();
    let otherwise = if allowed.is_empty() {
        format!("{keyword} takes no flags")
    } else {
        format!("{keyword} takes {}", dashed.join(", "))
    };
    src.error_at(
        span.start,
        span.end,
        format!("unknown flag --{name} for {keyword}"),
        did_you_mean(&format!("--{name}"), &dashed, otherwise),
    )
}

fn need_value(src: &Source<'_>, flag: &pd::Flag<'_>) -> Result<String, DockerfileError> {
    match &flag.value {
        Some(v) => Ok(v.value.to_string()),
        None => {
            let span = flag.flag_span();
            Err(src.error_at(
                span.start,
                span.end,
                format!("--{} needs a value", flag.name.value),
                format!("write --{}=<value>", flag.name.value),
            ))
        }
    }
}

/// Flags of `kind`, checked: known names, values where they cannot change by expansion.
fn flags(
    src: &Source<'_>,
    kind: Kind,
    options: &[pd::Flag<'_>],
) -> Result<Vec<Flag>, DockerfileError> {
    let mut out = Vec::new();
    for flag in options {
        let name = flag.name.value.to_string();
        if !kind.flags().contains(&name.as_str()) {
            return Err(unknown_flag(src, kind.keyword(), kind.flags(), flag));
        }
        let full = flag.span();
        let span = src.span(full.start, full.end);
        let is_bool = matches!(name.as_str(), "link" | "parents" | "keep-git-dir");
        let value = if is_bool {
            flag.value.as_ref().map(|v| v.value.to_string())
        } else {
            Some(need_value(src, flag)?)
        };
        let f = Flag { name, value, span };
        check_flag(kind, &f, src.escape).map_err(|message| DockerfileError {
            path: src.path.to_path_buf(),
            span,
            message,
            hint: None,
        })?;
        out.push(f);
    }
    Ok(out)
}

/// Checks a flag's value when it is literal (or never expanded, as HEALTHCHECK's); the
/// message says what is wrong.
pub(crate) fn check_flag(kind: Kind, flag: &Flag, escape: char) -> Result<(), String> {
    let Some(v) = flag.value.as_deref() else {
        return Ok(());
    };
    let name = &flag.name;
    let res = match name.as_str() {
        "interval" | "timeout" | "start-period" | "start-interval" => {
            value::health_duration(v).map(drop)
        }
        "retries" => value::retries(v).map(drop),
        _ if !expand::is_literal(v, escape) => Ok(()),
        "chmod" => value::octal_mode(v).map(drop),
        "network" => value::network(v).map(drop),
        "link" | "parents" | "keep-git-dir" => value::flag_bool(Some(v)).map(drop),
        "mount" => {
            return mount::parse(v)
                .map(drop)
                .map_err(|e| format!("--mount of {} is wrong: {e}", kind.keyword()));
        }
        _ => Ok(()),
    };
    res.map_err(|e| format!("--{name} of {} is wrong: {e}", kind.keyword()))
}

/// The keyword's start offset of a parsed instruction.
fn keyword_start(ins: &pd::Instruction<'_>) -> Option<usize> {
    use pd::Instruction as I;
    Some(match ins {
        I::Add(i) => i.add.span.start,
        I::Arg(i) => i.arg.span.start,
        I::Cmd(i) => i.cmd.span.start,
        I::Copy(i) => i.copy.span.start,
        I::Entrypoint(i) => i.entrypoint.span.start,
        I::Env(i) => i.env.span.start,
        I::Expose(i) => i.expose.span.start,
        I::From(i) => i.from.span.start,
        I::Healthcheck(i) => i.healthcheck.span.start,
        I::Label(i) => i.label.span.start,
        I::Maintainer(i) => i.maintainer.span.start,
        I::Onbuild(i) => i.onbuild.span.start,
        I::Run(i) => i.run.span.start,
        I::Shell(i) => i.shell.span.start,
        I::Stopsignal(i) => i.stopsignal.span.start,
        I::User(i) => i.user.span.start,
        I::Volume(i) => i.volume.span.start,
        I::Workdir(i) => i.workdir.span.start,
        _ => return None,
    })
}

fn exec(values: &[pd::UnescapedString<'_>]) -> Vec<String> {
    values.iter().map(|v| v.value.to_string()).collect()
}

fn heredocs(l: &Logical) -> Vec<Heredoc> {
    l.heredocs
        .iter()
        .map(|h| Heredoc {
            name: h.name.clone(),
            content: h.content.clone(),
            strip_tabs: h.strip_tabs,
            quoted: h.quoted,
        })
        .collect()
}

/// A shell-form command: the joined text after the keyword and the words `skip` takes.
fn shell_text(l: &Logical, skip: impl FnMut(&str) -> bool) -> String {
    let (_, rest) = split_word(&l.joined);
    skip_words(rest, skip).to_owned()
}

/// One instruction after FROM (or a global ARG).
fn instruction(
    src: &Source<'_>,
    by_start: &HashMap<usize, &Logical>,
    ins: &pd::Instruction<'_>,
) -> Result<Instruction, DockerfileError> {
    use pd::Instruction as I;
    let start = keyword_start(ins).unwrap_or_default();
    let Some(l) = by_start.get(&start) else {
        return Err(src.error_at(
            start,
            start,
            "this instruction could not be delimited",
            "check its continuation lines and here-documents",
        ));
    };
    let text_of = |s: &pd::UnescapedString<'_>| s.value.to_string();
    let (kind, body) = match ins {
        I::Run(r) => (Kind::Run, run_body(src, l, r)?),
        I::Copy(c) => (
            Kind::Copy,
            copy_body(src, l, Kind::Copy, &c.options, &c.src, &c.dest)?,
        ),
        I::Add(a) => (
            Kind::Add,
            copy_body(src, l, Kind::Add, &a.options, &a.src, &a.dest)?,
        ),
        I::Cmd(c) => (Kind::Cmd, command_body(l, &c.arguments)),
        I::Entrypoint(e) => (Kind::Entrypoint, command_body(l, &e.arguments)),
        I::Arg(a) => (Kind::Arg, Body::Text(text_of(&a.arguments))),
        I::Env(e) => (
            Kind::Env,
            pairs_body(src, l, Kind::Env, text_of(&e.arguments))?,
        ),
        I::Label(e) => (
            Kind::Label,
            pairs_body(src, l, Kind::Label, text_of(&e.arguments))?,
        ),
        I::Maintainer(m) => (Kind::Maintainer, Body::Text(text_of(&m.name))),
        I::Stopsignal(s) => (Kind::StopSignal, Body::Text(text_of(&s.arguments))),
        I::User(u) => (Kind::User, Body::Text(text_of(&u.arguments))),
        I::Workdir(w) => (Kind::Workdir, Body::Text(text_of(&w.arguments))),
        I::Expose(e) => (Kind::Expose, expose_body(src, l, &e.arguments)?),
        I::Shell(s) => (Kind::Shell, Body::Json(exec(&s.arguments))),
        I::Volume(v) => (
            Kind::Volume,
            match &v.arguments {
                pd::JsonOrStringArray::Json(j) => Body::Json(exec(&j.value)),
                pd::JsonOrStringArray::String(words) => Body::Words(exec(words)),
            },
        ),
        I::Healthcheck(h) => (Kind::Healthcheck, healthcheck_body(src, l, h)?),
        I::Onbuild(_) => (
            Kind::Onbuild,
            Body::Onbuild(split_word(&l.joined).1.to_owned()),
        ),
        _ => {
            return Err(src.error_at(
                start,
                l.end,
                "FROM cannot be used here",
                "FROM starts a stage; it cannot follow ONBUILD",
            ));
        }
    };
    let mut text = l.joined.clone();
    for h in &l.heredocs {
        text.push('\n');
        text.push_str(&h.raw);
    }
    Ok(Instruction {
        span: src.span(l.start, l.end),
        text,
        kind,
        body,
        escape: src.escape,
        path: src.path.clone(),
    })
}

fn line_error(
    src: &Source<'_>,
    l: &Logical,
    message: String,
    hint: Option<String>,
) -> DockerfileError {
    DockerfileError {
        path: src.path.to_path_buf(),
        span: src.span(l.start, l.end),
        message,
        hint,
    }
}

fn run_body(
    src: &Source<'_>,
    l: &Logical,
    r: &pd::RunInstruction<'_>,
) -> Result<Body, DockerfileError> {
    let flags = flags(src, Kind::Run, &r.options)?;
    let docs = heredocs(l);
    let (command, script) = match &r.arguments {
        pd::Command::Exec(e) => (Command::Exec(exec(&e.value)), false),
        _ => {
            let text = shell_text(l, |w| w.starts_with("--"));
            match (l.heredocs.as_slice(), docs.first()) {
                ([only], Some(doc)) if text == src.text[only.marker.clone()] => {
                    (Command::Shell(doc.content.clone()), true)
                }
                _ => {
                    let mut full = text;
                    for h in &l.heredocs {
                        full.push('\n');
                        full.push_str(&h.raw);
                    }
                    (Command::Shell(full), false)
                }
            }
        }
    };
    if let Command::Shell(text) = &command
        && text.trim().is_empty()
    {
        return Err(line_error(
            src,
            l,
            "RUN has no command".into(),
            Some("write the command after RUN and its flags".into()),
        ));
    }
    Ok(Body::Command {
        flags,
        command,
        heredocs: docs,
        script,
    })
}

fn command_body(l: &Logical, arguments: &pd::Command<'_>) -> Body {
    let command = match arguments {
        pd::Command::Exec(e) => Command::Exec(exec(&e.value)),
        _ => Command::Shell(shell_text(l, |_| false)),
    };
    Body::Command {
        flags: Vec::new(),
        command,
        heredocs: Vec::new(),
        script: false,
    }
}

fn copy_body(
    src: &Source<'_>,
    l: &Logical,
    kind: Kind,
    options: &[pd::Flag<'_>],
    sources: &[pd::Source<'_>],
    dest: &pd::UnescapedString<'_>,
) -> Result<Body, DockerfileError> {
    Ok(Body::Copy {
        flags: flags(src, kind, options)?,
        sources: sources
            .iter()
            .filter_map(|s| match s {
                pd::Source::Path(p) => Some(p.value.to_string()),
                _ => None,
            })
            .collect(),
        dest: dest.value.to_string(),
        heredocs: heredocs(l),
    })
}

fn pairs_body(
    src: &Source<'_>,
    l: &Logical,
    kind: Kind,
    text: String,
) -> Result<Body, DockerfileError> {
    pairs::pairs(&text, src.escape).map_err(|e| {
        line_error(
            src,
            l,
            format!("{} cannot be read: {e}", kind.keyword()),
            Some(format!(
                "write {} name=value [name=value...]",
                kind.keyword()
            )),
        )
    })?;
    Ok(Body::Text(text))
}

fn expose_body(
    src: &Source<'_>,
    l: &Logical,
    words: &[pd::UnescapedString<'_>],
) -> Result<Body, DockerfileError> {
    for w in words {
        if expand::is_literal(&w.value, src.escape) {
            value::ports(&w.value).map_err(|e| {
                src.error_at(
                    w.span.start,
                    w.span.end,
                    format!("EXPOSE cannot use this port: {e}"),
                    "write EXPOSE 80, 53/udp or 8000-8010/tcp",
                )
            })?;
        }
    }
    let _ = l;
    Ok(Body::Words(exec(words)))
}

fn healthcheck_body(
    src: &Source<'_>,
    l: &Logical,
    h: &pd::HealthcheckInstruction<'_>,
) -> Result<Body, DockerfileError> {
    let flags = flags(src, Kind::Healthcheck, &h.options)?;
    let check = match &h.arguments {
        pd::HealthcheckArguments::Cmd { arguments, .. } => Some(match arguments {
            pd::Command::Exec(e) => Command::Exec(exec(&e.value)),
            _ => {
                let mut cmd_seen = false;
                Command::Shell(shell_text(l, |w| {
                    if cmd_seen {
                        return false;
                    }
                    cmd_seen = w.eq_ignore_ascii_case("CMD");
                    w.starts_with("--") || cmd_seen
                }))
            }
        }),
        _ => {
            if !flags.is_empty() {
                return Err(line_error(
                    src,
                    l,
                    "HEALTHCHECK NONE takes no flags".into(),
                    Some("drop the flags, or give a CMD".into()),
                ));
            }
            None
        }
    };
    Ok(Body::Healthcheck { flags, check })
}
