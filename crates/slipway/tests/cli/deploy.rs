//! `deploy/`: the kustomization renders, applies to an API server (kube-emu), keeps the runs'
//! entrypoint image equal to the controller's own when the image is changed, and the arguments
//! its Deployments give slipway are ones slipway accepts.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::kube::emulator;
use crate::{bin, text};

fn kubectl(args: &[&str]) -> std::process::Output {
    Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", &emulator().kubeconfig)
        .output()
        .expect("kubectl runs")
}

/// The container `name` of Deployment or DaemonSet `kind/name` in slipway-system.
fn container(kind: &str, name: &str) -> Value {
    let out = kubectl(&["get", kind, name, "-n", "slipway-system", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let o: Value = serde_json::from_slice(&out.stdout).expect("json");
    o["spec"]["template"]["spec"]["containers"][0].clone()
}

#[test]
fn the_kustomization_applies_with_one_image_everywhere_and_arguments_slipway_accepts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // A copy whose image is set, as `kustomize edit set image` would.
    let copy = tempfile::tempdir().expect("tempdir");
    let deploy = copy.path().join("deploy");
    let status = Command::new("cp")
        .arg("-r")
        .arg(root.join("deploy"))
        .arg(&deploy)
        .status()
        .expect("cp");
    assert!(status.success());
    let k = deploy.join("kustomization.yaml");
    let set = std::fs::read_to_string(&k)
        .expect("kustomization")
        .replace(
            "newName: registry.example/slipway",
            "newName: 127.0.0.1:5000/team/slipway",
        )
        .replace("newTag: \"0.1\"", "newTag: \"v9\"");
    std::fs::write(&k, set).expect("write");
    let out = kubectl(&["apply", "-k", &deploy.display().to_string()]);
    assert!(
        out.status.success(),
        "kubectl apply -k deploy/: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let image = "127.0.0.1:5000/team/slipway:v9";
    let controller = container("deployment", "slipway-controller");
    assert_eq!(controller["image"], image);
    let entrypoint = controller["env"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["name"] == "SLIPWAY_KUBE_IMAGE")
        .expect("SLIPWAY_KUBE_IMAGE");
    assert_eq!(entrypoint["value"], image, "the runs' entrypoint image");
    for (kind, name) in [
        ("deployment", "slipway-prewarm-controller"),
        ("daemonset", "slipway-prewarm-agent"),
    ] {
        assert_eq!(container(kind, name)["image"], image, "{kind}/{name}");
    }
    // Each container's arguments, as slipway's parser sees them: no usage error (a cluster it
    // cannot reach is fine; the parse comes first).
    for (kind, name) in [
        ("deployment", "slipway-controller"),
        ("deployment", "slipway-prewarm-controller"),
        ("daemonset", "slipway-prewarm-agent"),
    ] {
        let c = container(kind, name);
        let command: Vec<String> = c["command"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(c["args"].as_array().into_iter().flatten())
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect();
        let at = command
            .iter()
            .position(|a| a.ends_with("/slipway"))
            .expect("the command runs slipway");
        let args: Vec<String> = command[at + 1..]
            .iter()
            .map(|a| {
                a.replace("$(POD_NAME)", "pod-0")
                    .replace("$(NODE_NAME)", "node-0")
            })
            .chain(["--help".to_string()])
            .collect();
        let out = Command::new(bin())
            .args(&args)
            .output()
            .expect("slipway runs");
        assert!(
            out.status.success(),
            "{kind}/{name}: slipway {args:?}: {}",
            text(&out.stderr)
        );
    }
}
