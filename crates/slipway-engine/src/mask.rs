//! Secret values masked before anything leaves the engine: Secret data a run can read (through
//! workspaces, env or envFrom) and params declared secret. Logs, objects and results only ever
//! carry `[MASKED]` in their place, so no store, API or terminal sees them.

use std::borrow::Cow;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;
use serde_json::Value;
use slipway_model::{Library, ParamValue, RunObject};

use crate::event::RunEvent;

/// What replaces a secret value.
pub const MASK: &str = "[MASKED]";

/// The annotation (on a run, Pipeline or Task) naming params whose values are secret.
pub const SECRET_PARAMS: &str = "slipway.dev/secret-params";

/// Secret values shorter than this many characters are not masked: masking `a`, `1` or `on`
/// would turn every line into noise and hide nothing worth hiding (GitLab CI's floor is 8). A
/// run says in a notice which values it leaves unmasked.
pub const MIN_MASKED_LEN: usize = 4;

/// Base64 forms found inside longer base64 text (`user:token` in a Docker `auth`, an HTTP Basic
/// header) are masked from this length: shorter pieces of base64 turn up by chance.
const MIN_EMBEDDED_LEN: usize = 8;

/// How the forms of the secrets are found.
#[derive(Debug)]
enum Finder {
    /// All at once.
    Automaton(AhoCorasick),
    /// Longest first, one after the other.
    OneByOne(Vec<String>),
}

/// The secret values of one run.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    /// Every form of every value, found leftmost-longest so that a secret containing another is
    /// masked whole; `None` when there is nothing to mask.
    finder: Option<Arc<Finder>>,
    /// What is too short to mask, named for the notice (never the value).
    unmasked: Arc<Vec<String>>,
}

impl Masker {
    /// Masks these values: each as it is, trimmed, line by line (logs come in lines), and in its
    /// base64 forms (standard and URL-safe, with and without padding, and inside longer base64).
    pub fn new(values: impl IntoIterator<Item = String>) -> Masker {
        let mut forms: Vec<String> = Vec::new();
        for s in values {
            let trimmed = s.trim();
            // The floor is the value's: a short value's base64 is long enough but as useless.
            if trimmed.chars().count() < MIN_MASKED_LEN {
                continue;
            }
            forms.extend(s.lines().map(|l| l.trim().to_string()));
            forms.extend(base64_forms(trimmed));
            if trimmed != s {
                forms.extend(base64_forms(&s));
            }
            forms.push(trimmed.to_string());
            forms.push(s);
        }
        forms.retain(|f| f.chars().count() >= MIN_MASKED_LEN);
        forms.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        forms.dedup();
        let finder = if forms.is_empty() {
            None
        } else {
            let automaton = AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&forms);
            Some(Arc::new(match automaton {
                Ok(a) => Finder::Automaton(a),
                // Past the automaton's size limits: slower, never unmasked.
                Err(_) => Finder::OneByOne(forms),
            }))
        };
        Masker {
            finder,
            unmasked: Arc::default(),
        }
    }

    /// What is too short to be masked (`Secret "s" key "k"`, `param "p"`), for a notice.
    pub fn too_short(&self) -> &[String] {
        &self.unmasked
    }

    /// The secrets `run` can reach in `lib`: every Secret's values, and the params named by
    /// `slipway.dev/secret-params` on the run or on its Pipeline or Task.
    pub fn for_run(lib: &Library, run: &RunObject) -> Masker {
        let mut values = Vec::new();
        let mut unmasked = Vec::new();
        let mut keep = |what: &dyn Fn() -> String, value: String| {
            let n = value.trim().chars().count();
            if n > 0 && n < MIN_MASKED_LEN {
                unmasked.push(what());
            }
            values.push(value);
        };
        for (name, s) in &lib.secrets {
            for (k, v) in &s.spec.string_data {
                keep(&|| format!("Secret \"{name}\" key \"{k}\""), v.clone());
            }
            for (k, d) in &s.spec.data {
                if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(d.trim())
                    && let Ok(text) = String::from_utf8(bytes)
                {
                    keep(&|| format!("Secret \"{name}\" key \"{k}\""), text);
                }
            }
        }
        let (mut names, params) = match run {
            RunObject::PipelineRun(pr) => {
                let target = pr
                    .spec
                    .pipeline_ref
                    .as_ref()
                    .and_then(|r| r.name.as_ref())
                    .and_then(|n| lib.pipelines.get(n))
                    .map(|p| declared(&p.meta.annotations))
                    .unwrap_or_default();
                (target, &pr.spec.params)
            }
            RunObject::TaskRun(tr) => {
                let target = tr
                    .spec
                    .task_ref
                    .as_ref()
                    .and_then(|r| r.name.as_ref())
                    .and_then(|n| lib.tasks.get(n))
                    .map(|t| declared(&t.meta.annotations))
                    .unwrap_or_default();
                (target, &tr.spec.params)
            }
        };
        names.extend(declared(&run.meta().annotations));
        for p in params.iter().filter(|p| names.contains(&p.name)) {
            let what = || format!("param \"{}\"", p.name);
            match &p.value {
                ParamValue::String(s) => keep(&what, s.clone()),
                ParamValue::Array(a) => a.iter().for_each(|v| keep(&what, v.clone())),
                ParamValue::Object(o) => o.values().for_each(|v| keep(&what, v.clone())),
            }
        }
        unmasked.dedup();
        let mut masker = Masker::new(values);
        masker.unmasked = Arc::new(unmasked);
        masker
    }

    /// Nothing to mask.
    pub fn is_empty(&self) -> bool {
        self.finder.is_none()
    }

    /// The text with every secret replaced.
    pub fn text<'a>(&self, s: &'a str) -> Cow<'a, str> {
        match self.finder.as_deref() {
            Some(Finder::Automaton(f)) if f.is_match(s) => {
                let mut out = String::with_capacity(s.len());
                f.replace_all_with(s, &mut out, |_, _, dst| {
                    dst.push_str(MASK);
                    true
                });
                Cow::Owned(out)
            }
            Some(Finder::OneByOne(forms)) => {
                let mut out = Cow::Borrowed(s);
                for f in forms {
                    if out.contains(f.as_str()) {
                        out = Cow::Owned(out.replace(f.as_str(), MASK));
                    }
                }
                out
            }
            _ => Cow::Borrowed(s),
        }
    }

    /// Masks every string in a JSON value.
    pub fn value(&self, v: &mut Value) {
        if self.is_empty() {
            return;
        }
        match v {
            Value::String(s) => {
                if let Cow::Owned(m) = self.text(s) {
                    *s = m;
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| self.value(x)),
            Value::Object(m) => m.values_mut().for_each(|x| self.value(x)),
            _ => {}
        }
    }

    /// The event with its lines and objects masked.
    pub fn event(&self, mut ev: RunEvent) -> RunEvent {
        if self.is_empty() {
            return ev;
        }
        match &mut ev {
            RunEvent::Log { line, .. } => {
                if let Cow::Owned(m) = self.text(line) {
                    *line = m;
                }
            }
            RunEvent::Notice { message, .. } => {
                if let Cow::Owned(m) = self.text(message) {
                    *message = m;
                }
            }
            RunEvent::RunStarted { object, .. }
            | RunEvent::TaskRunFinished { object, .. }
            | RunEvent::RunFinished { object, .. } => self.value(object),
            _ => {}
        }
        ev
    }
}

/// The base64 forms of `value`: whole (standard and URL-safe alphabets, padded and not), and the
/// part of its encoding that is the same wherever it sits inside longer encoded text (it starts
/// at any of three byte offsets; the characters that mix in its neighbours' bits are left out).
fn base64_forms(value: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let bytes = value.as_bytes();
    if bytes.is_empty() {
        return Vec::new();
    }
    let mut forms = vec![
        STANDARD.encode(bytes),
        STANDARD_NO_PAD.encode(bytes),
        URL_SAFE.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
    ];
    for shift in 0..3usize {
        let mut shifted = vec![0u8; shift];
        shifted.extend_from_slice(bytes);
        // Characters that carry bits of the bytes before the value: none, two or three.
        let skip = [0, 2, 3][shift];
        let whole = shifted.len() % 3 == 0;
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let encoded = engine.encode(&shifted);
            // The last character of an unfinished group also carries the next byte's bits.
            let end = if whole {
                encoded.len()
            } else {
                encoded.len() - 1
            };
            if let Some(core) = encoded.get(skip..end)
                && core.len() >= MIN_EMBEDDED_LEN
            {
                forms.push(core.to_string());
            }
        }
    }
    forms
}

fn declared(annotations: &indexmap::IndexMap<String, String>) -> Vec<String> {
    annotations
        .get(SECRET_PARAMS)
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longer_secrets_first_and_short_ones_left_alone() {
        let m = Masker::new([
            "hunter2hunter2".to_string(),
            "hunter2".to_string(),
            "ab".to_string(),
        ]);
        assert_eq!(
            m.text("pw=hunter2hunter2; old=hunter2; ab"),
            "pw=[MASKED]; old=[MASKED]; ab"
        );
        let mut v = serde_json::json!({"a": ["x hunter2"], "b": 1});
        m.value(&mut v);
        assert_eq!(v, serde_json::json!({"a": ["x [MASKED]"], "b": 1}));
    }

    #[test]
    fn each_line_of_a_multi_line_secret_is_masked() {
        let m = Masker::new(["-----BEGIN KEY-----\nAAAABBBBCCCC\n-----END KEY-----".to_string()]);
        assert_eq!(m.text("AAAABBBBCCCC"), MASK);
    }

    #[test]
    fn secrets_of_the_library_and_declared_params_are_collected() {
        let mut lib = Library::default();
        let mut diags = slipway_model::Diagnostics::default();
        let yaml = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {token: czNjcjN0LXZhbHVl}\n---\napiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata:\n  name: r\n  annotations: {slipway.dev/secret-params: password}\nspec:\n  params: [{name: password, value: pa55word}, {name: user, value: alice123}]\n  taskSpec:\n    params: [{name: password}, {name: user}]\n    steps: [{name: s, image: x, script: echo}]\n";
        lib.add_source("in.yaml".into(), yaml.into(), &mut diags);
        assert!(diags.is_empty(), "{}", diags.render_plain());
        let m = Masker::for_run(&lib, &lib.runs[0]);
        assert_eq!(
            m.text("s3cr3t-value pa55word alice123"),
            "[MASKED] [MASKED] alice123"
        );
    }

    #[test]
    fn base64_forms_are_masked_in_both_alphabets_padded_or_not() {
        use base64::engine::general_purpose::{
            STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
        };
        // Chosen so that its encodings hold `+` and `/` and need padding.
        let value = "pa55>>>??~~~word!";
        assert_ne!(STANDARD.encode(value), URL_SAFE.encode(value));
        assert!(STANDARD.encode(value).ends_with('='));
        let m = Masker::new([value.to_string()]);
        for encoded in [
            STANDARD.encode(value),
            STANDARD_NO_PAD.encode(value),
            URL_SAFE.encode(value),
            URL_SAFE_NO_PAD.encode(value),
        ] {
            assert_eq!(m.text(&format!("x={encoded};")), "x=[MASKED];", "{encoded}");
        }
        // `echo "$TOKEN" | base64` encodes a newline too.
        let echoed = STANDARD.encode(format!("{value}\n"));
        assert!(m.text(&echoed).starts_with(MASK), "{echoed}");
    }

    #[test]
    fn a_value_inside_longer_base64_is_masked_at_any_offset() {
        use base64::engine::general_purpose::STANDARD;
        let token = "ghp_16C7e42F292c6912E7710c838347Ae178B4a";
        let m = Masker::new([token.to_string()]);
        for user in ["a", "ab", "abc"] {
            // A Docker `auth` or an HTTP Basic header: base64 of `user:token`.
            let auth = STANDARD.encode(format!("{user}:{token}"));
            let masked = m.text(&auth);
            assert!(masked.contains(MASK), "{user}: {auth} -> {masked}");
            // Around the mask only the user's part and a character or two of padding are left.
            let user_part = STANDARD
                .encode(format!("{user}:"))
                .trim_end_matches('=')
                .len();
            assert!(
                masked.len() - MASK.len() <= user_part + 3,
                "{user}: {masked}"
            );
        }
    }

    #[test]
    fn values_too_short_to_mask_are_named_not_masked() {
        let m = Masker::new(["abc".to_string(), "".to_string()]);
        assert!(m.is_empty());
        assert_eq!(m.text("abc abc"), "abc abc");
        let mut lib = Library::default();
        let mut diags = slipway_model::Diagnostics::default();
        let yaml = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {pin: '123', token: long-enough, empty: ''}\n---\napiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata:\n  name: r\n  annotations: {slipway.dev/secret-params: code}\nspec:\n  params: [{name: code, value: x1}]\n  taskSpec:\n    params: [{name: code}]\n    steps: [{name: s, image: x, script: echo}]\n";
        lib.add_source("in.yaml".into(), yaml.into(), &mut diags);
        assert!(diags.is_empty(), "{}", diags.render_plain());
        let m = Masker::for_run(&lib, &lib.runs[0]);
        assert_eq!(
            m.too_short(),
            ["Secret \"s\" key \"pin\"", "param \"code\""]
        );
        assert_eq!(m.text("123 long-enough x1"), "123 [MASKED] x1");
    }

    #[test]
    fn the_fallback_finder_masks_the_same() {
        let values = ["hunter2hunter2".to_string(), "hunter2".to_string()];
        let fast = Masker::new(values.clone());
        let Some(Finder::Automaton(_)) = fast.finder.as_deref() else {
            panic!("an automaton for a few values");
        };
        let mut forms: Vec<String> = values.to_vec();
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        let slow = Masker {
            finder: Some(Arc::new(Finder::OneByOne(forms))),
            unmasked: Arc::default(),
        };
        let line = "pw=hunter2hunter2; old=hunter2; none";
        assert_eq!(slow.text(line), fast.text(line));
    }
}
