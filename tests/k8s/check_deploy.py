#!/usr/bin/env python3
"""Checks deploy/reflexd.yaml as far as a machine without a cluster can:
it parses, every object has its required fields, the DaemonSet has what
reflexd needs (hostPID, the node name, the BPF and tracefs mounts, the
capabilities daemon.c checks for, the rules ConfigMap mounted as a
directory), and the RBAC granted to reflexd's ServiceAccount is exactly
the (verb, group, resource) table in k8s/k8s.c: every call covered,
nothing more. Prints one line per problem; exits 1 if any.

usage: check_deploy.py REPO_ROOT RULES_OUT_DIR
"""
import os
import re
import sys

import yaml

root, rules_out = sys.argv[1], sys.argv[2]
problems = []


def problem(msg):
    problems.append(msg)
    print("deploy/reflexd.yaml: " + msg)


def need(obj, path, what):
    cur = obj
    for key in path.split("."):
        if not isinstance(cur, dict) or key not in cur:
            problem("%s %s: missing %s" % (what, obj.get("metadata", {}).get("name", "?"), path))
            return None
        cur = cur[key]
    return cur


with open(os.path.join(root, "deploy/reflexd.yaml")) as f:
    docs = [d for d in yaml.safe_load_all(f) if d]
by_kind = {}
for d in docs:
    for field in ("apiVersion", "kind", "metadata.name"):
        need(d, field, d.get("kind", "object"))
    by_kind.setdefault(d["kind"], []).append(d)
for kind in ("Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role",
             "RoleBinding", "ConfigMap", "DaemonSet"):
    if kind not in by_kind:
        problem("no %s" % kind)

sa = by_kind["ServiceAccount"][0]
sa_name, sa_ns = sa["metadata"]["name"], sa["metadata"].get("namespace")

# ---- the DaemonSet ----
ds = by_kind["DaemonSet"][0]
spec = need(ds, "spec.template.spec", "DaemonSet") or {}
labels = (need(ds, "spec.template.metadata.labels", "DaemonSet") or {}).items()
selector = (need(ds, "spec.selector.matchLabels", "DaemonSet") or {}).items()
if not set(selector) <= set(labels):
    problem("DaemonSet: selector does not match the pod template's labels")
if spec.get("hostPID") is not True:
    problem("DaemonSet: hostPID must be true (sensors report host pids)")
if spec.get("serviceAccountName") != sa_name or ds["metadata"].get("namespace") != sa_ns:
    problem("DaemonSet: not run as ServiceAccount %s/%s" % (sa_ns, sa_name))
c = spec["containers"][0]
for field in ("name", "image", "args"):
    if field not in c:
        problem("DaemonSet container: missing %s" % field)
env = {e["name"]: e for e in c.get("env", [])}
if env.get("NODE_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "spec.nodeName":
    problem("DaemonSet: NODE_NAME must come from the downward API (spec.nodeName)")
sc = c.get("securityContext", {})
if not sc.get("privileged"):
    with open(os.path.join(root, "cmd/daemon.c")) as f:
        needed = re.findall(r'\{ CAP_(\w+), "CAP_\w+" \}', f.read())
    added = set(sc.get("capabilities", {}).get("add", []))
    for cap in needed:
        if cap not in added:
            problem("DaemonSet: capability %s (checked by cmd/daemon.c) not added" % cap)
volumes = {v["name"]: v for v in spec.get("volumes", [])}
mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
for path in ("/sys/fs/bpf", "/sys/kernel/tracing"):
    m = mounts.get(path)
    if not m or volumes.get(m["name"], {}).get("hostPath", {}).get("path") != path:
        problem("DaemonSet: %s must be the host's, mounted at the same path" % path)
args = c.get("args", [])
rules_dir = args[args.index("--rules") + 1] if "--rules" in args else None
m = mounts.get(rules_dir)
if not m:
    problem("DaemonSet: --rules %s is not a mounted volume" % rules_dir)
else:
    if "subPath" in m:
        problem("DaemonSet: the rules are mounted with subPath, which never updates")
    cm_name = volumes.get(m["name"], {}).get("configMap", {}).get("name")
    cms = [x for x in by_kind["ConfigMap"] if x["metadata"]["name"] == cm_name]
    if not cms:
        problem("DaemonSet: the rules volume is not the rules ConfigMap")
    else:
        os.makedirs(rules_out, exist_ok=True)
        for key, text in cms[0].get("data", {}).items():
            with open(os.path.join(rules_out, key), "w") as out:
                out.write(text)
if "--dry-run" not in args:
    problem("DaemonSet: ships without --dry-run")

# ---- RBAC: granted == used ----
with open(os.path.join(root, "k8s/k8s.c")) as f:
    src = f.read()
table = src[src.index("rbac-table-begin"):src.index("rbac-table-end")]
used = set(re.findall(r'\] = \{ "(\w+)", "([\w.]*)", "([\w/]+)" \}', table))
enum = re.findall(r"^\t(K8S_\w+),", src, re.M)
with open(os.path.join(root, "k8s/k8s.h")) as f:
    calls = [c for c in re.findall(r"^\t(K8S_\w+),", f.read(), re.M) if c != "K8S_CALL_COUNT"]
entries = re.findall(r"\[(K8S_\w+)\] = \{", table)
if sorted(calls) != sorted(entries):
    problem("k8s/k8s.c: the RBAC table does not list every call in k8s/k8s.h")
if not used:
    problem("k8s/k8s.c: no RBAC table found")


def bound(binding):
    return any(s.get("kind") == "ServiceAccount" and s.get("name") == sa_name and
               s.get("namespace") == sa_ns for s in binding.get("subjects", []))


granted = set()
for kind, bkind in (("ClusterRole", "ClusterRoleBinding"), ("Role", "RoleBinding")):
    for role in by_kind.get(kind, []):
        if not any(b["roleRef"]["kind"] == kind and b["roleRef"]["name"] == role["metadata"]["name"] and
                   bound(b) for b in by_kind.get(bkind, [])):
            problem("%s %s is not bound to the ServiceAccount" % (kind, role["metadata"]["name"]))
            continue
        for rule in role.get("rules", []):
            for g in rule.get("apiGroups", []):
                for r in rule.get("resources", []):
                    for v in rule.get("verbs", []):
                        if "*" in (g, r, v):
                            problem("%s %s: wildcard grants are not least privilege" % (kind, role["metadata"]["name"]))
                        granted.add((v, g, r))
for v, g, r in sorted(used - granted):
    problem("RBAC: reflexd calls '%s' on '%s' (group '%s') but no role grants it" % (v, r, g))
for v, g, r in sorted(granted - used):
    problem("RBAC: grants '%s' on '%s' (group '%s'), which reflexd never uses" % (v, r, g))
print("%d objects, %d API calls covered, %d problems" % (len(docs), len(used), len(problems)))
sys.exit(1 if problems else 0)
