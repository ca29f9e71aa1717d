#!/usr/bin/env python3
"""A fixture Kubernetes API server for reflexd's tests.

HTTPS with a test CA, bearer tokens checked, and answers shaped like the
real API server's for the calls reflexd makes: paths, verbs, content types,
Status bodies, uid preconditions, PodDisruptionBudget refusals of
evictions, resourceVersion conflicts on Leases. Faults (429 with
Retry-After, 5xx, slow replies, RBAC refusals) are injected from a JSON
file read at every request. Every request is logged as one JSON line.

usage: apiserver.py PORT CERT KEY STATE_DIR   (ca.crt next to CERT)
STATE_DIR holds:
  tokens       accepted bearer tokens, one a line (re-read per request);
               "cert:CN" accepts a client certificate from ca.crt
  pods.json    the pods: a list of Pod objects (spec.nodeName set)
  leases.json  optional, read at start: a list of Lease objects to begin with
  faults.json  optional: {"faults": [{"method": "DELETE", "path": "regex",
               "status": 429, "retry_after": "1", "delay": 0.5, "count": 1}],
               "forbid": [["delete", "pods", "path regex"]], "pdb_blocks": ["ns/name"]}
  requests.log written: one JSON object per request
"""
import json
import os
import re
import ssl
import sys
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PORT, CERT, KEY, STATE = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
lock = threading.Lock()
leases = {}          # (ns, name) -> Lease
rv = [1000]          # the cluster's resourceVersion counter
events = []
nodes = {}


def next_rv():
    rv[0] += 1
    return str(rv[0])


def read_json(name, default):
    try:
        with open(os.path.join(STATE, name)) as f:
            return json.load(f)
    except FileNotFoundError:
        return default


def write_pods(pods):
    tmp = os.path.join(STATE, "pods.json.tmp")
    with open(tmp, "w") as f:
        json.dump(pods, f)
    os.rename(tmp, os.path.join(STATE, "pods.json"))


def status(code, reason, message, details=None):
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
         "message": message, "reason": reason, "code": code}
    if details:
        s["details"] = details
    return code, s


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# (method, regex) -> (verb, group, resource): what RBAC would check
ROUTES = [
    ("GET", r"/api/v1/pods", "list", "", "pods"),
    ("DELETE", r"/api/v1/namespaces/([^/]+)/pods/([^/]+)", "delete", "", "pods"),
    ("POST", r"/api/v1/namespaces/([^/]+)/pods/([^/]+)/eviction", "create", "", "pods/eviction"),
    ("PATCH", r"/api/v1/namespaces/([^/]+)/pods/([^/]+)", "patch", "", "pods"),
    ("PATCH", r"/api/v1/nodes/([^/]+)", "patch", "", "nodes"),
    ("PATCH", r"/apis/apps/v1/namespaces/([^/]+)/(deployments|statefulsets)/([^/]+)/scale", "patch", "apps", None),
    ("POST", r"/api/v1/namespaces/([^/]+)/events", "create", "", "events"),
    ("GET", r"/apis/coordination.k8s.io/v1/namespaces/([^/]+)/leases/([^/]+)", "get", "coordination.k8s.io", "leases"),
    ("POST", r"/apis/coordination.k8s.io/v1/namespaces/([^/]+)/leases", "create", "coordination.k8s.io", "leases"),
    ("PUT", r"/apis/coordination.k8s.io/v1/namespaces/([^/]+)/leases/([^/]+)", "update", "coordination.k8s.io", "leases"),
]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, obj, headers=None):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        # a client certificate (verified against the test CA) stands for
        # the token "cert:<its CN>"
        cert = self.connection.getpeercert() if not token else None
        if cert:
            cn = [v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"]
            token = "cert:" + (cn[0] if cn else "")
        entry = {"time": time.time(), "method": self.command, "path": url.path,
                 "query": url.query, "token": token,
                 "content_type": self.headers.get("Content-Type", ""),
                 "body": None}
        try:
            entry["body"] = json.loads(raw) if raw else None
        except ValueError:
            entry["body"] = raw.decode(errors="replace")
        try:
            code, obj, headers = self.route(url, token, entry)
        except Exception:
            # a bug in the fixture must show, not hang the test
            traceback.print_exc()
            code, obj, headers = status(500, "InternalError", "fixture error") + ({},)
        entry["status"] = code
        entry["reply_reason"] = obj.get("reason", "") if isinstance(obj, dict) else ""
        with lock:
            with open(os.path.join(STATE, "requests.log"), "a") as f:
                f.write(json.dumps(entry) + "\n")
        self.reply(code, obj, headers)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

    def route(self, url, token, entry):
        try:
            tokens = open(os.path.join(STATE, "tokens")).read().split()
        except FileNotFoundError:
            tokens = []
        if token not in tokens:
            return status(401, "Unauthorized", "Unauthorized") + ({},)
        faults = read_json("faults.json", {})
        for f in faults.get("faults", []):
            if f.get("count", 1) <= 0:
                continue
            if f.get("method", self.command) != self.command or not re.search(f["path"], url.path):
                continue
            with lock:
                f["count"] = f.get("count", 1) - 1
                path = os.path.join(STATE, "faults.json")
                with open(path + ".tmp", "w") as out:
                    json.dump(faults, out)
                os.rename(path + ".tmp", path)
            if f.get("delay"):
                time.sleep(f["delay"])
            if f.get("status"):
                code = f["status"]
                reason = {409: "Conflict", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
                          504: "Timeout"}.get(code, "InternalError")
                headers = {"Retry-After": f["retry_after"]} if f.get("retry_after") else {}
                return status(code, reason, "injected by the fixture") + (headers,)
        for method, regex, verb, group, resource in ROUTES:
            m = re.fullmatch(regex, url.path)
            if method != self.command or not m:
                continue
            if resource is None:
                resource = m.group(2) + "/scale"
            for forbid in faults.get("forbid", []):
                fv, fr, where = (forbid + [""])[:3]
                if (fv, fr) == (verb, resource) and re.search(where, url.path):
                    ns = m.group(1) if m.groups() and "namespaces" in regex else ""
                    return status(403, "Forbidden",
                                  '%s is forbidden: User "system:serviceaccount:reflexd:reflexd" '
                                  'cannot %s resource "%s" in API group "%s"%s' %
                                  (resource, verb, resource, group,
                                   ' in the namespace "%s"' % ns if ns else "")) + ({},)
            handler = getattr(self, "api_%s_%s" % (verb, resource.replace("/", "_")))
            with lock:
                return handler(m, url, entry["body"], faults) + ({},)
        return status(404, "NotFound", "the server could not find the requested resource") + ({},)

    # ---- pods ----
    def api_list_pods(self, m, url, body, faults):
        q = parse_qs(url.query)
        node = None
        for sel in q.get("fieldSelector", []):
            if sel.startswith("spec.nodeName="):
                node = sel.split("=", 1)[1]
        pods = [p for p in read_json("pods.json", []) if node is None or p["spec"].get("nodeName") == node]
        return 200, {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": str(rv[0])},
                     "items": pods}

    def find_pod(self, ns, name):
        pods = read_json("pods.json", [])
        for p in pods:
            if p["metadata"]["namespace"] == ns and p["metadata"]["name"] == name:
                return pods, p
        return pods, None

    def precondition(self, pod, opts):
        want = ((opts or {}).get("preconditions") or {}).get("uid")
        if want and want != pod["metadata"]["uid"]:
            return status(409, "Conflict",
                          'Operation cannot be fulfilled on Pod "%s": Precondition failed: UID in '
                          'precondition: %s, UID in object meta: %s' %
                          (pod["metadata"]["name"], want, pod["metadata"]["uid"]),
                          {"name": pod["metadata"]["name"], "kind": "Pod"})
        return None

    def api_delete_pods(self, m, url, body, faults):
        ns, name = m.group(1), m.group(2)
        pods, pod = self.find_pod(ns, name)
        if not pod:
            return status(404, "NotFound", 'pods "%s" not found' % name, {"name": name, "kind": "pods"})
        if body is not None and body.get("kind") != "DeleteOptions":
            return status(400, "BadRequest", "expected DeleteOptions")
        bad = self.precondition(pod, body)
        if bad:
            return bad
        pods.remove(pod)
        write_pods(pods)
        pod["metadata"]["deletionTimestamp"] = now()
        return 200, pod

    def api_create_pods_eviction(self, m, url, body, faults):
        ns, name = m.group(1), m.group(2)
        pods, pod = self.find_pod(ns, name)
        if not pod:
            return status(404, "NotFound", 'pods "%s" not found' % name, {"name": name, "kind": "pods"})
        if not body or body.get("kind") != "Eviction" or body.get("apiVersion") != "policy/v1":
            return status(400, "BadRequest", "expected a policy/v1 Eviction")
        bad = self.precondition(pod, body.get("deleteOptions"))
        if bad:
            return bad
        if "%s/%s" % (ns, name) in faults.get("pdb_blocks", []):
            return status(429, "TooManyRequests",
                          "Cannot evict pod as it would violate the pod's disruption budget.",
                          {"causes": [{"reason": "DisruptionBudget",
                                       "message": "The disruption budget %s-pdb needs 1 healthy pods "
                                                  "and has 1 currently" % name}]})
        pods.remove(pod)
        write_pods(pods)
        return 201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    def check_patch_type(self, allowed):
        ct = self.headers.get("Content-Type", "")
        if ct not in allowed:
            return status(415, "UnsupportedMediaType", 'the body of the request was in an unknown format - '
                          'accepted media types include: ' + ", ".join(allowed))
        return None

    def api_patch_pods(self, m, url, body, faults):
        bad = self.check_patch_type(["application/merge-patch+json", "application/strategic-merge-patch+json"])
        if bad:
            return bad
        ns, name = m.group(1), m.group(2)
        pods, pod = self.find_pod(ns, name)
        if not pod:
            return status(404, "NotFound", 'pods "%s" not found' % name, {"name": name, "kind": "pods"})
        for field in ("labels", "annotations"):
            for k, v in ((body or {}).get("metadata", {}).get(field) or {}).items():
                pod["metadata"].setdefault(field, {})[k] = v
        pod["metadata"]["resourceVersion"] = next_rv()
        write_pods(pods)
        return 200, pod

    def api_patch_nodes(self, m, url, body, faults):
        bad = self.check_patch_type(["application/merge-patch+json", "application/strategic-merge-patch+json"])
        if bad:
            return bad
        name = m.group(1)
        node = nodes.setdefault(name, {"kind": "Node", "apiVersion": "v1",
                                       "metadata": {"name": name, "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, name))},
                                       "spec": {}})
        node["spec"].update((body or {}).get("spec", {}))
        node["metadata"]["resourceVersion"] = next_rv()
        return 200, node

    def api_patch_deployments_scale(self, m, url, body, faults):
        bad = self.check_patch_type(["application/merge-patch+json", "application/strategic-merge-patch+json"])
        if bad:
            return bad
        ns, kind, name = m.group(1), m.group(2), m.group(3)
        replicas = ((body or {}).get("spec") or {}).get("replicas")
        if not isinstance(replicas, int):
            return status(422, "Invalid", "spec.replicas: Required value")
        return 200, {"kind": "Scale", "apiVersion": "autoscaling/v1",
                     "metadata": {"name": name, "namespace": ns,
                                  "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, ns + "/" + name)),
                                  "resourceVersion": next_rv()},
                     "spec": {"replicas": replicas}, "status": {"replicas": replicas}}

    api_patch_statefulsets_scale = api_patch_deployments_scale

    def api_create_events(self, m, url, body, faults):
        ns = m.group(1)
        inv = (body or {}).get("involvedObject") or {}
        if not body or body.get("kind") != "Event" or not inv.get("uid") or not inv.get("name"):
            return status(422, "Invalid", "Event is invalid: involvedObject: name and uid required")
        body.setdefault("metadata", {})["name"] = body["metadata"].get("generateName", "e-") + uuid.uuid4().hex[:5]
        body["metadata"]["namespace"] = ns
        body["metadata"]["uid"] = str(uuid.uuid4())
        body["metadata"]["resourceVersion"] = next_rv()
        events.append(body)
        return 201, body

    # ---- leases ----
    def api_get_leases(self, m, url, body, faults):
        lease = leases.get((m.group(1), m.group(2)))
        if not lease:
            return status(404, "NotFound", 'leases.coordination.k8s.io "%s" not found' % m.group(2),
                          {"name": m.group(2), "group": "coordination.k8s.io", "kind": "leases"})
        return 200, lease

    def api_create_leases(self, m, url, body, faults):
        ns = m.group(1)
        name = ((body or {}).get("metadata") or {}).get("name")
        if not name or body.get("kind") != "Lease":
            return status(422, "Invalid", "Lease is invalid: metadata.name: Required value")
        if (ns, name) in leases:
            return status(409, "AlreadyExists", 'leases.coordination.k8s.io "%s" already exists' % name,
                          {"name": name, "group": "coordination.k8s.io", "kind": "leases"})
        body["metadata"].update({"namespace": ns, "uid": str(uuid.uuid4()), "resourceVersion": next_rv()})
        leases[(ns, name)] = body
        return 201, body

    def api_update_leases(self, m, url, body, faults):
        ns, name = m.group(1), m.group(2)
        old = leases.get((ns, name))
        if not old:
            return status(404, "NotFound", 'leases.coordination.k8s.io "%s" not found' % name)
        if ((body or {}).get("metadata") or {}).get("resourceVersion") != old["metadata"]["resourceVersion"]:
            return status(409, "Conflict",
                          'Operation cannot be fulfilled on leases.coordination.k8s.io "%s": the object '
                          'has been modified; please apply your changes to the latest version and try again'
                          % name, {"name": name, "group": "coordination.k8s.io", "kind": "leases"})
        body["metadata"]["uid"] = old["metadata"]["uid"]
        body["metadata"]["resourceVersion"] = next_rv()
        leases[(ns, name)] = body
        return 200, body


def main():
    for lease in read_json("leases.json", []):
        lease["metadata"]["resourceVersion"] = next_rv()
        lease["metadata"].setdefault("uid", str(uuid.uuid4()))
        leases[(lease["metadata"]["namespace"], lease["metadata"]["name"])] = lease
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(CERT, KEY)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.load_verify_locations(os.path.join(os.path.dirname(CERT), "ca.crt"))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
