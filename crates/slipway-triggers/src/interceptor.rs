//! Interceptors: GitHub (HMAC signature, event types), GitLab (token, event types) and CEL
//! (filter, overlays), normalised from both the `ref`/`params` and the older inline forms.

use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::event::Event;
use crate::kinds::InterceptorSpec;
use crate::{Definitions, TriggerError};

/// A Secret key holding a webhook secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    /// Secret name.
    pub name: String,
    /// Key in it.
    pub key: String,
}

/// An interceptor ready to run.
#[derive(Debug, Clone)]
pub enum Interceptor {
    /// GitHub's signature and event types.
    GitHub {
        /// The webhook secret.
        secret: Option<SecretRef>,
        /// Accepted `X-GitHub-Event` values; empty accepts all.
        event_types: Vec<String>,
    },
    /// GitLab's token and event types.
    GitLab {
        /// The webhook secret token.
        secret: Option<SecretRef>,
        /// Accepted `X-Gitlab-Event` values; empty accepts all.
        event_types: Vec<String>,
    },
    /// A CEL filter and overlays.
    Cel {
        /// Must be true for the trigger to fire.
        filter: Option<String>,
        /// `extensions.KEY` values computed from the event.
        overlays: Vec<(String, String)>,
    },
}

/// What an interceptor decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go on.
    Pass,
    /// The trigger does not fire for this event (a filter said no): not an error.
    Skip(String),
}

fn secret_ref(v: &Value) -> Option<SecretRef> {
    Some(SecretRef {
        name: v.get("secretName")?.as_str()?.to_string(),
        key: v.get("secretKey")?.as_str()?.to_string(),
    })
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

fn overlays(v: Option<&Value>) -> Vec<(String, String)> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|o| {
            Some((
                o.get("key")?.as_str()?.to_string(),
                o.get("expression")?.as_str()?.to_string(),
            ))
        })
        .collect()
}

impl Interceptor {
    /// From the spec; unsupported interceptors are an error naming them.
    pub fn from_spec(spec: &InterceptorSpec) -> Result<Interceptor, String> {
        let (name, params): (String, Map<String, Value>) = if let Some(r) = &spec.reference {
            let params = spec
                .params
                .iter()
                .map(|p| (p.name.clone(), p.value.clone()))
                .collect();
            (r.name.clone(), params)
        } else if let Some(v) = &spec.github {
            ("github".into(), v.as_object().cloned().unwrap_or_default())
        } else if let Some(v) = &spec.gitlab {
            ("gitlab".into(), v.as_object().cloned().unwrap_or_default())
        } else if let Some(v) = &spec.cel {
            ("cel".into(), v.as_object().cloned().unwrap_or_default())
        } else {
            let other: Vec<&String> = spec.other.keys().collect();
            return Err(format!(
                "interceptor {} is not supported",
                other
                    .first()
                    .map(|s| format!("`{s}`"))
                    .unwrap_or_else(|| "without a ref".into())
            ));
        };
        Ok(match name.as_str() {
            "github" => Interceptor::GitHub {
                secret: params.get("secretRef").and_then(secret_ref),
                event_types: strings(params.get("eventTypes")),
            },
            "gitlab" => Interceptor::GitLab {
                secret: params.get("secretRef").and_then(secret_ref),
                event_types: strings(params.get("eventTypes")),
            },
            "cel" => Interceptor::Cel {
                filter: params
                    .get("filter")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                overlays: overlays(params.get("overlays")),
            },
            other => {
                return Err(format!(
                    "interceptor `{other}` is not supported (slipway runs github, gitlab and cel)"
                ));
            }
        })
    }

    /// Runs the interceptor on `event`, adding overlays to its extensions.
    pub fn run(
        &self,
        trigger: &str,
        event: &mut Event,
        defs: &dyn Definitions,
    ) -> Result<Verdict, TriggerError> {
        match self {
            Interceptor::GitHub {
                secret,
                event_types,
            } => {
                if let Some(s) = secret
                    && !event.trusted
                {
                    let key = secret_value(defs, s)?;
                    let sig = event.header("X-Hub-Signature-256").ok_or_else(|| {
                        TriggerError::Signature {
                            trigger: trigger.into(),
                            message:
                                "no X-Hub-Signature-256 header; set the webhook's secret in GitHub"
                                    .into(),
                            missing: true,
                        }
                    })?;
                    verify_github(&key, &event.raw, sig).map_err(|message| {
                        TriggerError::Signature {
                            trigger: trigger.into(),
                            message,
                            missing: false,
                        }
                    })?;
                }
                event_type(trigger, event, "X-GitHub-Event", event_types)
            }
            Interceptor::GitLab {
                secret,
                event_types,
            } => {
                if let Some(s) = secret
                    && !event.trusted
                {
                    let key = secret_value(defs, s)?;
                    let token =
                        event
                            .header("X-Gitlab-Token")
                            .ok_or_else(|| {
                                TriggerError::Signature {
                            trigger: trigger.into(),
                            message:
                                "no X-Gitlab-Token header; set the webhook's secret token in GitLab"
                                    .into(),
                            missing: true,
                        }
                            })?;
                    if !bool::from(token.as_bytes().ct_eq(&key)) {
                        return Err(TriggerError::Signature {
                            trigger: trigger.into(),
                            message: "X-Gitlab-Token does not match the secret".into(),
                            missing: false,
                        });
                    }
                }
                event_type(trigger, event, "X-Gitlab-Event", event_types)
            }
            Interceptor::Cel { filter, overlays } => {
                if let Some(f) = filter
                    && !crate::expr::filter(f, event).map_err(|message| TriggerError::Cel {
                        trigger: trigger.into(),
                        expression: f.clone(),
                        message,
                    })?
                {
                    return Ok(Verdict::Skip(format!("CEL filter `{f}` is false")));
                }
                for (key, expression) in overlays {
                    let v = crate::expr::eval(expression, event).map_err(|message| {
                        TriggerError::Cel {
                            trigger: trigger.into(),
                            expression: expression.clone(),
                            message,
                        }
                    })?;
                    event.extend(key, v);
                }
                Ok(Verdict::Pass)
            }
        }
    }

    /// Secrets this interceptor needs.
    pub fn secret(&self) -> Option<&SecretRef> {
        match self {
            Interceptor::GitHub { secret, .. } | Interceptor::GitLab { secret, .. } => {
                secret.as_ref()
            }
            Interceptor::Cel { .. } => None,
        }
    }
}

fn secret_value(defs: &dyn Definitions, s: &SecretRef) -> Result<Vec<u8>, TriggerError> {
    defs.secret(&s.name, &s.key)
        .ok_or_else(|| TriggerError::Config {
            message: format!(
                "Secret `{}` has no key `{}` (the webhook secret); apply it first",
                s.name, s.key
            ),
        })
}

fn event_type(
    trigger: &str,
    event: &Event,
    header: &str,
    accepted: &[String],
) -> Result<Verdict, TriggerError> {
    if accepted.is_empty() {
        return Ok(Verdict::Pass);
    }
    let got = event.header(header).unwrap_or("").to_string();
    if accepted.contains(&got) {
        return Ok(Verdict::Pass);
    }
    Err(TriggerError::EventType {
        trigger: trigger.into(),
        header: header.into(),
        got,
        accepted: accepted.to_vec(),
    })
}

/// Checks `sha256=HEX` against the HMAC-SHA256 of the body, in constant time.
pub fn verify_github(key: &[u8], body: &[u8], header: &str) -> Result<(), String> {
    let hex_sig = header
        .strip_prefix("sha256=")
        .ok_or("X-Hub-Signature-256 does not start with `sha256=`")?;
    let sig = hex::decode(hex_sig).map_err(|_| "X-Hub-Signature-256 is not hex".to_string())?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key).map_err(|e| format!("bad webhook secret: {e}"))?;
    mac.update(body);
    mac.verify_slice(&sig)
        .map_err(|_| "X-Hub-Signature-256 does not match the payload and the secret".to_string())
}

/// The header value GitHub would send for `body` signed with `key` (for tests and senders).
pub fn sign_github(key: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any size");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_signatures_verify_and_tampering_fails() {
        let sig = sign_github(b"s3cret", b"{\"a\":1}");
        assert!(verify_github(b"s3cret", b"{\"a\":1}", &sig).is_ok());
        assert!(verify_github(b"s3cret", b"{\"a\":2}", &sig).is_err());
        assert!(verify_github(b"other", b"{\"a\":1}", &sig).is_err());
        assert!(verify_github(b"s3cret", b"{}", "sha1=00").is_err());
        assert!(verify_github(b"s3cret", b"{}", "sha256=zz").is_err());
    }

    #[test]
    fn both_spellings_of_an_interceptor_read_the_same() {
        let new: InterceptorSpec = serde_json::from_value(serde_json::json!({
            "ref": {"name": "github"},
            "params": [{"name": "secretRef", "value": {"secretName": "gh", "secretKey": "token"}},
                       {"name": "eventTypes", "value": ["push"]}]
        }))
        .expect("spec");
        let old: InterceptorSpec = serde_json::from_value(serde_json::json!({
            "github": {"secretRef": {"secretName": "gh", "secretKey": "token"}, "eventTypes": ["push"]}
        }))
        .expect("spec");
        for spec in [new, old] {
            match Interceptor::from_spec(&spec).expect("supported") {
                Interceptor::GitHub {
                    secret,
                    event_types,
                } => {
                    assert_eq!(secret.map(|s| s.name), Some("gh".into()));
                    assert_eq!(event_types, ["push"]);
                }
                other => panic!("{other:?}"),
            }
        }
        let webhook: InterceptorSpec =
            serde_json::from_value(serde_json::json!({"webhook": {"url": "x"}})).expect("spec");
        assert!(
            Interceptor::from_spec(&webhook)
                .expect_err("an error")
                .contains("`webhook`")
        );
    }
}
