//! Which stages a target needs, in an order that builds each after what it uses.

use crate::dockerfile::{Dockerfile, DockerfileError, Kind, Vars, expand};

/// The stages `stage_index` uses: its `FROM <stage>`, `COPY --from=<stage>` and
/// `RUN --mount=from=<stage>` (names or indices, after ARG expansion). A `--from` naming no
/// stage is an image, not a dependency. `vars` is the global scope.
pub fn dependencies(df: &Dockerfile, stage_index: usize, vars: &Vars) -> Vec<usize> {
    let Some(stage) = df.stages.get(stage_index) else {
        return Vec::new();
    };
    let mut deps = Vec::new();
    let global = vars.lookup();
    let base = expand::expand_word(&stage.base, df.escape, &global).unwrap_or_default();
    // FROM takes stage names only; `FROM 0` is an image called "0".
    let base = base.to_lowercase();
    if let Some(s) = df.stages[..stage_index]
        .iter()
        .find(|s| s.name.as_deref() == Some(base.as_str()))
    {
        deps.push(s.index);
    }
    let mut scope = vars.stage(&[]);
    for ins in &stage.instructions {
        if matches!(ins.kind, Kind::Arg | Kind::Env)
            && let Ok(resolved) = ins.resolve(&scope)
        {
            scope.apply(&resolved);
        }
        for reference in ins.stage_refs() {
            let lookup = scope.lookup();
            let Ok(name) = expand::expand_word(&reference, df.escape, &lookup) else {
                continue;
            };
            if let Some(s) = df.stage(&name)
                && s.index != stage_index
            {
                deps.push(s.index);
            }
        }
    }
    deps.sort_unstable();
    deps.dedup();
    deps
}

/// The indices of the stages `target` (a name or index; the last stage by default) needs,
/// each after the stages it depends on; stages it does not need are left out.
pub fn stages_for_target(
    df: &Dockerfile,
    target: Option<&str>,
    vars: &Vars,
) -> Result<Vec<usize>, DockerfileError> {
    let last_span = df.stages.last().map(|s| s.span).unwrap_or_default();
    let error = |message: String, hint: String| DockerfileError {
        path: df.path.clone(),
        span: last_span,
        message,
        hint: Some(hint),
    };
    let start = match target {
        None => df.stages.len().checked_sub(1),
        Some(t) => df.stage(t).map(|s| s.index),
    };
    let Some(start) = start else {
        return Err(error(
            format!(
                "target stage `{}` does not exist",
                target.unwrap_or_default()
            ),
            format!("stages are: {}", df.stage_names().join(", ")),
        ));
    };
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Visiting,
        Done,
    }
    let mut marks = vec![Mark::New; df.stages.len()];
    let mut order = Vec::new();
    // Depth-first post-order with an explicit stack, so deep chains cannot overflow.
    let mut stack = vec![(start, false)];
    while let Some((i, expanded)) = stack.pop() {
        if expanded {
            marks[i] = Mark::Done;
            order.push(i);
            continue;
        }
        match marks[i] {
            Mark::Done => continue,
            Mark::Visiting => {
                let name = df.stage_names().get(i).cloned().unwrap_or_default();
                return Err(error(
                    format!("stage `{name}` depends on itself through --from"),
                    "break the cycle between the stages' COPY --from and RUN --mount=from".into(),
                ));
            }
            Mark::New => {}
        }
        marks[i] = Mark::Visiting;
        stack.push((i, true));
        for d in dependencies(df, i, vars).into_iter().rev() {
            if marks[d] == Mark::Visiting {
                let name = df.stage_names().get(d).cloned().unwrap_or_default();
                return Err(error(
                    format!("stage `{name}` depends on itself through --from"),
                    "break the cycle between the stages' COPY --from and RUN --mount=from".into(),
                ));
            }
            if marks[d] == Mark::New {
                stack.push((d, false));
            }
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;

    fn plan(text: &str, target: Option<&str>, args: &[(&str, &str)]) -> Result<Vec<usize>, String> {
        let df = Dockerfile::parse(Path::new("Dockerfile"), text).map_err(|e| e.report())?;
        let build_args: BTreeMap<String, String> = args
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let vars = Vars::global(&build_args, &df.global_args);
        stages_for_target(&df, target, &vars).map_err(|e| e.message)
    }

    const MULTI: &str = "\
ARG FLAVOR=a
FROM alpine AS base
FROM base AS a
RUN true
FROM base AS b
FROM scratch AS unused
FROM busybox AS final
ARG FLAVOR
COPY --from=${FLAVOR} /x /x
RUN --mount=type=bind,from=tools,target=/t true
COPY --from=nginx:latest /etc/nginx /etc/nginx
FROM alpine AS tools
";

    #[test]
    fn target_needs_only_its_stages_in_order() {
        assert_eq!(plan(MULTI, Some("final"), &[]), Ok(vec![0, 1, 5, 4]));
        assert_eq!(
            plan(MULTI, Some("final"), &[("FLAVOR", "b")]),
            Ok(vec![0, 2, 5, 4])
        );
        assert_eq!(plan(MULTI, None, &[]), Ok(vec![5]));
        assert_eq!(plan(MULTI, Some("A"), &[]), Ok(vec![0, 1]));
        assert_eq!(plan(MULTI, Some("3"), &[]), Ok(vec![3]));
    }

    #[test]
    fn copy_from_index() {
        let text = "FROM alpine\nFROM alpine\nCOPY --from=0 /a /a\n";
        assert_eq!(plan(text, None, &[]), Ok(vec![0, 1]));
    }

    #[test]
    fn unknown_target_lists_stages() {
        assert_eq!(
            plan(MULTI, Some("nope"), &[]),
            Err("target stage `nope` does not exist".into())
        );
    }

    #[test]
    fn cycles_are_refused() {
        let text = "FROM alpine AS a\nCOPY --from=b /x /x\nFROM alpine AS b\nCOPY --from=a /y /y\n";
        assert!(plan(text, Some("a"), &[]).is_err());
    }
}
