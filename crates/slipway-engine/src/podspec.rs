//! Pod-level parts of a TaskRun plan: resource limits, sidecar readiness probes and
//! registry credentials, read from Kubernetes-shaped fields.

use std::time::Duration;

use serde_json::Value;
use slipway_model::Library;

use crate::error::Failure;
use crate::executor::{Limits, ProbeAction, ProbePlan, PullSecret};
use crate::sources::secret_entries;

fn invalid(message: String) -> Failure {
    Failure::new("TaskRunValidationFailed", message)
}

fn quantity(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `computeResources.limits` (or v1beta1 `resources.limits`) of a container.
pub(crate) fn limits(owner: &str, resources: Option<&Value>) -> Result<Limits, Failure> {
    amounts(owner, resources, "limits")
}

/// `computeResources.requests` of a container.
pub(crate) fn requests(owner: &str, resources: Option<&Value>) -> Result<Limits, Failure> {
    amounts(owner, resources, "requests")
}

fn amounts(owner: &str, resources: Option<&Value>, which: &str) -> Result<Limits, Failure> {
    let Some(l) = resources.and_then(|r| r.get(which)) else {
        return Ok(Limits::default());
    };
    let read = |key: &str, parse: fn(&str) -> Option<u64>| -> Result<Option<u64>, Failure> {
        let Some(v) = l.get(key) else { return Ok(None) };
        let text = quantity(v).unwrap_or_default();
        parse(&text).map(Some).ok_or_else(|| {
            invalid(format!(
                "{owner}: `computeResources.{which}.{key}` is `{text}`, not a quantity such as `512Mi` or `500m`"
            ))
        })
    };
    Ok(Limits {
        memory_bytes: read("memory", slipway_model::quantity::bytes)?,
        cpu_millis: read("cpu", slipway_model::quantity::millicores)?,
    })
}

fn seconds(probe: &Value, key: &str, default: u64) -> Duration {
    Duration::from_secs(probe.get(key).and_then(Value::as_u64).unwrap_or(default))
}

/// A sidecar's `readinessProbe`; named ports are looked up in its `ports`.
pub(crate) fn readiness(
    owner: &str,
    probe: Option<&Value>,
    ports: Option<&Value>,
) -> Result<Option<ProbePlan>, Failure> {
    let Some(p) = probe else { return Ok(None) };
    let port = |handler: &Value| -> Result<u16, Failure> {
        let v = handler.get("port").unwrap_or(&Value::Null);
        if let Some(n) = v.as_u64().and_then(|n| u16::try_from(n).ok()) {
            return Ok(n);
        }
        if let Some(n) = v.as_str().and_then(|s| s.parse::<u16>().ok()) {
            return Ok(n);
        }
        let name = v.as_str().unwrap_or_default();
        ports
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|cp| cp.get("name").and_then(Value::as_str) == Some(name))
            .and_then(|cp| cp.get("containerPort")?.as_u64())
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| {
                invalid(format!(
                    "{owner}: readinessProbe port `{v}` is neither a number nor a named port of the sidecar"
                ))
            })
    };
    let action = if let Some(e) = p.get("exec") {
        let command: Vec<String> = e
            .get("command")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str().map(str::to_string))
            .collect();
        if command.is_empty() {
            return Err(invalid(format!(
                "{owner}: readinessProbe.exec needs a command"
            )));
        }
        ProbeAction::Exec(command)
    } else if let Some(t) = p.get("tcpSocket") {
        ProbeAction::Tcp { port: port(t)? }
    } else if let Some(h) = p.get("httpGet") {
        ProbeAction::Http {
            port: port(h)?,
            path: h
                .get("path")
                .and_then(Value::as_str)
                .unwrap_or("/")
                .to_string(),
        }
    } else {
        return Err(invalid(format!(
            "{owner}: readinessProbe needs exec, tcpSocket or httpGet"
        )));
    };
    Ok(Some(ProbePlan {
        action,
        initial_delay: seconds(p, "initialDelaySeconds", 0),
        period: seconds(p, "periodSeconds", 10).max(Duration::from_millis(100)),
        timeout: seconds(p, "timeoutSeconds", 1).max(Duration::from_millis(100)),
        failure_threshold: p
            .get("failureThreshold")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(3)
            .max(1),
    }))
}

/// Registry credentials from `podTemplate.imagePullSecrets`, read from the loaded Secrets.
pub(crate) fn pull_secrets(
    lib: &Library,
    pod_template: Option<&Value>,
) -> Result<Vec<PullSecret>, Failure> {
    let names = pod_template
        .and_then(|p| p.get("imagePullSecrets"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("name").and_then(Value::as_str));
    let mut out = Vec::new();
    for name in names {
        let entries = secret_entries(lib, name, false)?;
        let config = entries
            .into_iter()
            .find(|(k, _)| k == ".dockerconfigjson" || k == ".dockercfg")
            .ok_or_else(|| {
                Failure::new(
                    "CreateContainerConfigError",
                    format!(
                        "image pull secret `{name}` has no `.dockerconfigjson` key; create it with type kubernetes.io/dockerconfigjson"
                    ),
                )
            })?;
        out.push(PullSecret {
            name: name.to_string(),
            config_json: config.1,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn limits_read_quantities_and_reject_nonsense() {
        let l = limits(
            "step `a`",
            Some(&json!({"limits": {"memory": "64Mi", "cpu": "500m"}})),
        )
        .expect("valid");
        assert_eq!(l.memory_bytes, Some(64 << 20));
        assert_eq!(l.cpu_millis, Some(500));
        let err =
            limits("step `a`", Some(&json!({"limits": {"memory": "lots"}}))).expect_err("invalid");
        assert!(err.message.contains("`lots`"), "{}", err.message);
    }

    #[test]
    fn probes_resolve_named_ports() {
        let p = readiness(
            "sidecar `db`",
            Some(&json!({"tcpSocket": {"port": "pg"}, "periodSeconds": 1})),
            Some(&json!([{"name": "pg", "containerPort": 5432}])),
        )
        .expect("valid")
        .expect("probe");
        assert_eq!(p.action, ProbeAction::Tcp { port: 5432 });
        assert_eq!(p.period, Duration::from_secs(1));
        assert!(readiness("s", Some(&json!({"tcpSocket": {"port": "x"}})), None).is_err());
    }
}
