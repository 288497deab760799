"""Checks Weft's Kubernetes manifests: every document of every YAML file under --root is
validated (strict: unknown fields are errors) against the Kubernetes OpenAPI schemas that the
kubernetes-validate package ships, and a copy with a deliberate mistake must fail (so a
validator that accepts anything cannot pass). Every ConfigMap's weft.yaml is written to --out
as <configmap>.yaml, with <configmap>.env holding the environment its pods give it (values
from fieldRefs replaced by an example address), for `weft validate`.

Prints one line per checked resource; exits 1 on any failure.
"""

import argparse
import copy
import glob
import os
import sys

import kubernetes_validate
import yaml


def validate(doc):
    kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    failures = []
    docs = []
    for path in sorted(glob.glob(os.path.join(args.root, "**", "*.yaml"), recursive=True)):
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc:
                    docs.append((os.path.relpath(path, args.root), doc))
    for path, doc in docs:
        name = "%s/%s" % (doc.get("kind"), doc.get("metadata", {}).get("name"))
        try:
            validate(doc)
            print("valid: %s %s" % (path, name))
        except Exception as e:  # the package raises its own ValidationError subclasses
            failures.append("%s %s: %s" % (path, name, e))
    # A mistake the schemas must catch: a string where an integer belongs.
    workloads = [d for _, d in docs if d.get("kind") in ("StatefulSet", "DaemonSet")]
    broken = copy.deepcopy(workloads[0])
    broken["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "four"
    try:
        validate(broken)
        failures.append("a manifest with containerPort: \"four\" was accepted: the validator checks nothing")
    except Exception:
        print("rejected: a deliberately broken %s" % broken["kind"])
    # The configs, with the environment of the pods that mount them.
    env_of = {}
    for _, d in docs:
        if d.get("kind") not in ("StatefulSet", "DaemonSet"):
            continue
        spec = d["spec"]["template"]["spec"]
        for volume in spec.get("volumes", []):
            cm = volume.get("configMap", {}).get("name")
            if cm:
                env = {}
                for c in spec["containers"]:
                    for e in c.get("env", []):
                        env[e["name"]] = e.get("value", "10.1.2.3")
                env_of[cm] = env
    os.makedirs(args.out, exist_ok=True)
    for _, d in docs:
        if d.get("kind") == "ConfigMap" and "weft.yaml" in d.get("data", {}):
            name = d["metadata"]["name"]
            with open(os.path.join(args.out, name + ".yaml"), "w") as f:
                f.write(d["data"]["weft.yaml"])
            with open(os.path.join(args.out, name + ".env"), "w") as f:
                for k, v in sorted(env_of.get(name, {}).items()):
                    f.write("%s=%s\n" % (k, v))
            print("config: %s" % name)
    for failure in failures:
        print("INVALID: " + failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
