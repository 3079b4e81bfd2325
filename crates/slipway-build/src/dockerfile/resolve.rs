//! An instruction made ready to carry out: variables expanded with Docker's rules for it,
//! flags and values checked.

use crate::dockerfile::expand::{self, ExpandError};
use crate::dockerfile::instruction::{Body, Flag, Kind};
use crate::dockerfile::{
    ArgDecl, Command, CopySpec, DockerfileError, Healthcheck, Heredoc, Instruction, Network,
    Resolved, RunSpec, Vars, mount, pairs, value,
};

/// A variable lookup that owns what it borrows from.
type BoxedLookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

/// Expands with `vars`, turning failures into errors at the instruction.
struct Expander<'a> {
    ins: &'a Instruction,
    lookup: BoxedLookup<'a>,
}

impl Expander<'_> {
    fn error(&self, word: &str, e: &ExpandError) -> DockerfileError {
        let hint = match e {
            ExpandError::Required { name, .. } => Some(format!(
                "declare it with `ARG {name}` and pass --build-arg {name}=<value>, or set it with ENV"
            )),
            _ => Some("escape a literal `$` as `\\$`, or quote with '...'".to_owned()),
        };
        self.ins.error(
            format!("{} cannot expand `{word}`: {e}", self.ins.kind.keyword()),
            hint,
        )
    }

    fn word(&self, word: &str) -> Result<String, DockerfileError> {
        expand::expand_word(word, self.ins.escape, &*self.lookup).map_err(|e| self.error(word, &e))
    }

    fn words(&self, word: &str) -> Result<Vec<String>, DockerfileError> {
        expand::expand_words(word, self.ins.escape, &*self.lookup).map_err(|e| self.error(word, &e))
    }

    /// The expanded values of flag `name`, in order.
    fn flag_values(&self, flags: &[Flag], name: &str) -> Result<Vec<String>, DockerfileError> {
        flags
            .iter()
            .filter(|f| f.name == name)
            .filter_map(|f| f.value.as_deref())
            .map(|v| self.word(v))
            .collect()
    }

    /// The last value of flag `name`, expanded.
    fn flag(&self, flags: &[Flag], name: &str) -> Result<Option<String>, DockerfileError> {
        Ok(self.flag_values(flags, name)?.pop())
    }

    /// A boolean flag: present (maybe `=true`/`=false`) or not.
    fn flag_bool(&self, flags: &[Flag], name: &str) -> Result<bool, DockerfileError> {
        match flags.iter().rev().find(|f| f.name == name) {
            None => Ok(false),
            Some(f) => {
                let v = f.value.as_deref().map(|v| self.word(v)).transpose()?;
                value::flag_bool(v.as_deref()).map_err(|e| self.value_error(name, &e))
            }
        }
    }

    fn value_error(&self, name: &str, e: &dyn std::fmt::Display) -> DockerfileError {
        self.ins.error(
            format!("--{name} of {} is wrong: {e}", self.ins.kind.keyword()),
            None,
        )
    }
}

/// Expands and checks `ins` with `vars`.
pub(crate) fn resolve(ins: &Instruction, vars: &Vars) -> Result<Resolved, DockerfileError> {
    let x = Expander {
        ins,
        lookup: Box::new(vars.lookup()),
    };
    let keyword = ins.kind.keyword();
    match (&ins.kind, &ins.body) {
        (
            Kind::Run,
            Body::Command {
                flags,
                command,
                heredocs,
                script,
            },
        ) => run(&x, flags, command, heredocs, *script),
        (Kind::Cmd, Body::Command { command, .. }) => Ok(Resolved::Cmd(command.clone())),
        (Kind::Entrypoint, Body::Command { command, .. }) => {
            Ok(Resolved::Entrypoint(command.clone()))
        }
        (
            kind @ (Kind::Copy | Kind::Add),
            Body::Copy {
                flags,
                sources,
                dest,
                heredocs,
            },
        ) => copy(&x, *kind == Kind::Add, flags, sources, dest, heredocs),
        (Kind::Env | Kind::Label, Body::Text(text)) => {
            let raw = pairs::pairs(text, ins.escape)
                .map_err(|e| ins.error(format!("{keyword} cannot be read: {e}"), None))?;
            let mut out = Vec::new();
            for (k, v) in raw {
                let key = x.word(&k)?;
                if key.is_empty() {
                    return Err(ins.error(format!("{keyword} has an empty name"), None));
                }
                out.push((key, x.word(&v)?));
            }
            Ok(if ins.kind == Kind::Env {
                Resolved::Env(out)
            } else {
                Resolved::Label(out)
            })
        }
        (Kind::Arg, Body::Text(text)) => {
            let raw = pairs::args(text, ins.escape)
                .map_err(|e| ins.error(format!("ARG cannot be read: {e}"), None))?;
            raw.into_iter()
                .map(|(name, default)| {
                    Ok(ArgDecl {
                        name,
                        default: default.map(|d| x.word(&d)).transpose()?,
                    })
                })
                .collect::<Result<_, _>>()
                .map(Resolved::Arg)
        }
        (Kind::Workdir, Body::Text(t)) => Ok(Resolved::Workdir(x.word(t)?)),
        (Kind::User, Body::Text(t)) => Ok(Resolved::User(x.word(t)?)),
        (Kind::StopSignal, Body::Text(t)) => Ok(Resolved::StopSignal(x.word(t)?)),
        (Kind::Maintainer, Body::Text(t)) => Ok(Resolved::Maintainer(t.clone())),
        (Kind::Expose, Body::Words(words)) => expose(&x, words),
        (Kind::Volume, Body::Words(words) | Body::Json(words)) => {
            let paths = words
                .iter()
                .map(|w| x.word(w))
                .collect::<Result<Vec<_>, _>>()?;
            if paths.iter().any(|p| p.trim().is_empty()) {
                return Err(ins.error("VOLUME has an empty path", None));
            }
            Ok(Resolved::Volume(paths))
        }
        (Kind::Shell, Body::Json(words)) => Ok(Resolved::Shell(words.clone())),
        (Kind::Healthcheck, Body::Healthcheck { flags, check }) => healthcheck(&x, flags, check),
        (Kind::Onbuild, Body::Onbuild(trigger)) => Ok(Resolved::Onbuild(trigger.clone())),
        _ => Err(ins.error(
            format!("{keyword} was parsed into an unexpected form"),
            Some("this is a bug in slipway".to_owned()),
        )),
    }
}

fn run(
    x: &Expander<'_>,
    flags: &[Flag],
    command: &Command,
    heredocs: &[Heredoc],
    script: bool,
) -> Result<Resolved, DockerfileError> {
    let mounts = x
        .flag_values(flags, "mount")?
        .iter()
        .map(|m| mount::parse(m).map_err(|e| x.value_error("mount", &e)))
        .collect::<Result<_, _>>()?;
    let network = match x.flag(flags, "network")? {
        None => Network::Default,
        Some(n) => value::network(&n).map_err(|e| x.value_error("network", &e))?,
    };
    Ok(Resolved::Run(RunSpec {
        command: command.clone(),
        mounts,
        network,
        heredocs: heredocs.to_vec(),
        script,
    }))
}

fn copy(
    x: &Expander<'_>,
    add: bool,
    flags: &[Flag],
    sources: &[String],
    dest: &str,
    heredocs: &[Heredoc],
) -> Result<Resolved, DockerfileError> {
    let chmod = match x.flag(flags, "chmod")? {
        None => None,
        Some(m) => Some(value::octal_mode(&m).map_err(|e| x.value_error("chmod", &e))?),
    };
    let heredocs = heredocs
        .iter()
        .map(|h| {
            Ok(Heredoc {
                content: if h.quoted {
                    h.content.clone()
                } else {
                    expand_heredoc(x, &h.content)?
                },
                ..h.clone()
            })
        })
        .collect::<Result<_, DockerfileError>>()?;
    Ok(Resolved::Copy(CopySpec {
        add,
        sources: sources
            .iter()
            .map(|s| x.word(s))
            .collect::<Result<_, _>>()?,
        dest: x.word(dest)?,
        from: x.flag(flags, "from")?,
        chown: x.flag(flags, "chown")?,
        chmod,
        link: x.flag_bool(flags, "link")?,
        parents: x.flag_bool(flags, "parents")?,
        exclude: x.flag_values(flags, "exclude")?,
        checksum: x.flag(flags, "checksum")?,
        keep_git_dir: x.flag_bool(flags, "keep-git-dir")?,
        heredocs,
    }))
}

/// A heredoc's content with variables expanded, quotes and everything else kept: a file's
/// text is not a shell word.
fn expand_heredoc(x: &Expander<'_>, content: &str) -> Result<String, DockerfileError> {
    let mut out = String::new();
    let mut rest = content;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let len = reference_len(tail);
        if len <= 1 {
            out.push('$');
        } else {
            out.push_str(&x.word(&tail[..len])?);
        }
        rest = &tail[len.max(1)..];
    }
    out.push_str(rest);
    Ok(out)
}

/// How many bytes the `$name` or `${...}` at the start of `text` spans.
fn reference_len(text: &str) -> usize {
    let body = &text[1..];
    if body.starts_with('{') {
        let mut depth = 0;
        for (i, c) in body.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        return i + 2;
                    }
                }
                _ => {}
            }
        }
        return text.len();
    }
    1 + body
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(body.len())
}

fn expose(x: &Expander<'_>, words: &[String]) -> Result<Resolved, DockerfileError> {
    let mut out = Vec::new();
    for w in words {
        for port in x.words(w)? {
            let ports = value::ports(&port).map_err(|e| {
                x.ins.error(
                    format!("EXPOSE cannot use this port: {e}"),
                    Some("write EXPOSE 80, 53/udp or 8000-8010/tcp".to_owned()),
                )
            })?;
            out.extend(ports);
        }
    }
    Ok(Resolved::Expose(out))
}

fn healthcheck(
    x: &Expander<'_>,
    flags: &[Flag],
    check: &Option<Command>,
) -> Result<Resolved, DockerfileError> {
    let Some(check) = check else {
        return Ok(Resolved::Healthcheck(Healthcheck::None));
    };
    // HEALTHCHECK is not expanded by Docker; its flags were checked when parsed.
    let raw = |name: &str| {
        flags
            .iter()
            .rev()
            .find(|f| f.name == name)
            .and_then(|f| f.value.clone())
    };
    let duration = |name: &str| {
        raw(name)
            .map(|v| value::health_duration(&v).map_err(|e| x.value_error(name, &e)))
            .transpose()
    };
    let test = match check {
        Command::Exec(args) => std::iter::once("CMD".to_owned())
            .chain(args.clone())
            .collect(),
        Command::Shell(text) => vec!["CMD-SHELL".to_owned(), text.clone()],
    };
    Ok(Resolved::Healthcheck(Healthcheck::Check {
        test,
        interval: duration("interval")?,
        timeout: duration("timeout")?,
        start_period: duration("start-period")?,
        start_interval: duration("start-interval")?,
        retries: raw("retries")
            .map(|v| value::retries(&v).map_err(|e| x.value_error("retries", &e)))
            .transpose()?,
    }))
}
