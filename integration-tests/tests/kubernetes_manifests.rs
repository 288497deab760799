//! The Kubernetes manifests under `deploy/kubernetes/` are valid Kubernetes objects (strict
//! validation against the API's OpenAPI schemas, with `kubernetes-validate`), and every Weft
//! configuration they embed passes `weft validate` with the environment its pods give it.

use weft_integration_tests::{run_python_client, weft_validate, workspace_root};

#[test]
fn manifests_are_valid_kubernetes_and_their_configs_valid_weft() {
    let out = tempfile::tempdir().unwrap();
    let root = workspace_root().join("deploy").join("kubernetes");
    let report = run_python_client(
        "check_manifests.py",
        &[
            "--root",
            root.to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        report.contains("rejected: a deliberately broken"),
        "{report}"
    );
    for kind in [
        "daemonset/weft-agent",
        "statefulset/weft-gateway",
        "service/weft-gateway-headless",
    ] {
        assert!(
            report.to_lowercase().contains(kind),
            "{kind} not checked:\n{report}"
        );
    }
    let mut configs = 0;
    for entry in std::fs::read_dir(out.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let config = std::fs::read_to_string(&path).unwrap();
        let env_text = std::fs::read_to_string(path.with_extension("env")).unwrap();
        let env: Vec<(&str, &str)> = env_text.lines().filter_map(|l| l.split_once('=')).collect();
        let (code, output) = weft_validate(&config, &env).unwrap();
        assert_eq!(code, 0, "{}: {output}", path.display());
        configs += 1;
    }
    assert_eq!(configs, 4, "agent and gateway, for each design:\n{report}");
}

#[test]
fn the_example_tier_configs_are_valid() {
    for name in ["sidecar.yaml", "gateway.yaml"] {
        let config = std::fs::read_to_string(workspace_root().join("config").join(name)).unwrap();
        let (code, output) = weft_validate(&config, &[]).unwrap();
        assert_eq!(code, 0, "config/{name}: {output}");
    }
}
