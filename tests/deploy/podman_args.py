#!/usr/bin/env python3
"""Prints the `podman run` arguments that run reflexd's container the way
deploy/reflexd.yaml's DaemonSet runs it: its namespaces, capabilities,
security options, memory limit, volumes and args, one argument a line.
The host paths of the state volumes (under /var and /run) are moved into
SCRATCH so a test leaves the host's own untouched; the rules ConfigMap is
written into SCRATCH/rules, unless --rules-dir DIR gives the test's own.
$(VAR) in args takes its value from --env VAR=VALUE (the downward API's).

usage: podman_args.py MANIFEST SCRATCH [--rules-dir DIR] [--env VAR=VALUE]...
"""
import os
import re
import sys

import yaml

manifest, scratch = sys.argv[1], sys.argv[2]
rest = sys.argv[3:]
rules_dir, env = None, {}
while rest:
    flag, value, rest = rest[0], rest[1], rest[2:]
    if flag == "--rules-dir":
        rules_dir = value
    elif flag == "--env":
        k, v = value.split("=", 1)
        env[k] = v
    else:
        sys.exit("podman_args.py: unknown flag " + flag)

with open(manifest) as f:
    docs = [d for d in yaml.safe_load_all(f) if d]
ds = next(d for d in docs if d["kind"] == "DaemonSet")
configmaps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
spec = ds["spec"]["template"]["spec"]
c = spec["containers"][0]
sc = c.get("securityContext", {})
out = []

if spec.get("hostPID"):
    out.append("--pid=host")
if spec.get("hostNetwork"):
    out.append("--network=host")
if sc.get("privileged"):
    out.append("--privileged")
caps = sc.get("capabilities", {})
for cap in caps.get("drop", []):
    out += ["--cap-drop", cap]
for cap in caps.get("add", []):
    out += ["--cap-add", cap]
if sc.get("allowPrivilegeEscalation") is False:
    out += ["--security-opt", "no-new-privileges"]
if sc.get("readOnlyRootFilesystem"):
    out.append("--read-only")
for key, opt in (("seccompProfile", "seccomp"), ("appArmorProfile", "apparmor")):
    kind = sc.get(key, {}).get("type", "RuntimeDefault")
    if kind == "Unconfined":
        out += ["--security-opt", opt + "=unconfined"]
    elif kind != "RuntimeDefault":
        sys.exit("podman_args.py: %s %s is not supported here" % (key, kind))
mem = c.get("resources", {}).get("limits", {}).get("memory")
if mem:
    m = re.fullmatch(r"(\d+)(Mi|Gi)", mem)
    out += ["--memory", "%d%s" % (int(m.group(1)), "m" if m.group(2) == "Mi" else "g")]
for e in c.get("env", []):
    if "value" in e:
        out += ["--env", "%s=%s" % (e["name"], e["value"])]
    elif e["name"] in env:
        out += ["--env", "%s=%s" % (e["name"], env[e["name"]])]
volumes = {v["name"]: v for v in spec.get("volumes", [])}
for m in c.get("volumeMounts", []):
    v = volumes[m["name"]]
    if "hostPath" in v:
        src = v["hostPath"]["path"]
        if src.startswith(("/var/", "/run/")):
            src = os.path.join(scratch, src.strip("/").replace("/", "_"))
        if v["hostPath"].get("type") == "DirectoryOrCreate":
            os.makedirs(src, exist_ok=True)
        elif not os.path.isdir(src):
            sys.exit("podman_args.py: hostPath %s is not a directory" % src)
    elif "configMap" in v:
        src = rules_dir
        if not src:
            src = os.path.join(scratch, "rules")
            os.makedirs(src, exist_ok=True)
            for key, text in configmaps[v["configMap"]["name"]].get("data", {}).items():
                with open(os.path.join(src, key), "w") as f:
                    f.write(text)
    else:
        sys.exit("podman_args.py: volume %s: only hostPath and configMap here" % m["name"])
    out += ["--volume", "%s:%s%s" % (src, m["mountPath"], ":ro" if m.get("readOnly") else "")]
out.append("IMAGE")
for a in c.get("args", []):
    out.append(re.sub(r"\$\((\w+)\)", lambda g: env.get(g.group(1), g.group(0)), a))
print("\n".join(out))
