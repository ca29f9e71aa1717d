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
  pods.json    the pods: a list of Pod objects (spec.nodeName set); an edit
               of the file by a test is seen within 0.1 s and becomes
               watch events (ADDED, MODIFIED, DELETED), as a change made
               through the API does
  leases.json  optional, read at start: a list of Lease objects to begin with
  faults.json  optional: {"faults": [{"method": "DELETE", "path": "regex",
               "status": 429, "retry_after": "1", "delay": 0.5, "count": 1}],
               "forbid": [["delete", "pods", "path regex"]], "pdb_blocks": ["ns/name"]}
  events.log   written: one line per change of a pod (rv, type, node, name)
  requests.log written: one JSON object per request (a watch: when it
               starts, and again when it ends, with "watch_end")

Watches (GET /api/v1/pods?watch=true&resourceVersion=RV) answer as the
real API server does: 200, chunked, one JSON event a line
({"type":"ADDED","object":{...}}), BOOKMARK events when asked for
(allowWatchBookmarks=true), the stream ended after timeoutSeconds, and
a resourceVersion older than the kept history answered by an ERROR event
holding a 410 Expired Status. Controls in faults.json (one-shot keys are
removed once done):
  "bookmark_every": s    bookmark interval (default 60)
  "watch_timeout": s     the server's own cap on a watch (default 1800)
  "watch_lag": s         events reach watchers s late (a lagging watch cache)
  "gone_as_http": true   a too-old resourceVersion gets HTTP 410, not an event
  "compact": true        one-shot: forget the history (etcd compaction)
  "expire_watches": true one-shot: open watches get ERROR 410 and end
  "drop_watches": true   one-shot: open watches' connections are cut
  "churn_per_s": r       replace r random pods a second (fleet simulation)

With --sim-nodes N --sim-pods P the pods are made in memory (P on each of
nodes node-0 .. node-N-1) and pods.json is neither read nor written.
"""
import json
import os
import random
import re
import socket
import ssl
import sys
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PORT, CERT, KEY, STATE = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
SIM = dict(zip(sys.argv[5::2], sys.argv[6::2]))
SIM_NODES, SIM_PODS = int(SIM.get("--sim-nodes", 0)), int(SIM.get("--sim-pods", 0))
HISTORY_MAX = 100000   # events kept for watches resuming from an older resourceVersion
lock = threading.Lock()
log_lock = threading.Lock()
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


class Watcher:
    """One open watch: the events for its node, queued by whoever makes them."""

    def __init__(self, node):
        self.node = node
        self.queue = []
        self.cond = threading.Condition()
        self.end = None   # "expire" or "drop" when told to stop

    def push(self, item):
        with self.cond:
            self.queue.append(item)
            self.cond.notify()

    def stop(self, how):
        with self.cond:
            self.end = how
            self.cond.notify()


class Store:
    """The pods, their change history (for watches that resume) and the
    open watches, by node. Callers hold `lock`."""

    def __init__(self):
        self.pods = {}          # uid -> Pod
        self.by_node = {}       # node -> {uid: Pod}: a node's list without a scan
        self.history = []       # (rv, time, type, event line, node), oldest first
        self.compacted = 0      # watches from a resourceVersion below this get 410
        self.watchers = {}      # node -> set of Watcher
        self.file_stamp = None

    def load(self, pods):
        for p in pods:
            p["metadata"]["resourceVersion"] = next_rv()
            self.index(p)

    def index(self, pod):
        uid = pod["metadata"]["uid"]
        old = self.pods.get(uid)
        if old is not None:
            self.by_node.get(old["spec"].get("nodeName"), {}).pop(uid, None)
        self.pods[uid] = pod
        self.by_node.setdefault(pod["spec"].get("nodeName"), {})[uid] = pod

    def event(self, kind, pod):
        pod["metadata"]["resourceVersion"] = rv_now = next_rv()
        node = pod["spec"].get("nodeName")
        item = (int(rv_now), time.time(), kind, json.dumps({"type": kind, "object": pod}), node)
        self.history.append(item)
        if len(self.history) > HISTORY_MAX:
            drop = len(self.history) - HISTORY_MAX
            self.compacted = self.history[drop - 1][0] + 1
            del self.history[:drop]
        if not SIM_NODES:
            with log_lock, open(os.path.join(STATE, "events.log"), "a") as f:
                f.write(json.dumps({"rv": rv_now, "type": kind, "node": node,
                                    "name": pod["metadata"]["name"]}) + "\n")
        for w in list(self.watchers.get(node, ())) + list(self.watchers.get(None, ())):
            w.push(item)

    def put(self, pod):
        old = self.pods.get(pod["metadata"]["uid"])
        self.index(pod)
        self.event("MODIFIED" if old else "ADDED", pod)

    def delete(self, uid):
        pod = self.pods.pop(uid)
        self.by_node.get(pod["spec"].get("nodeName"), {}).pop(uid, None)
        self.event("DELETED", pod)
        return pod

    def on_node(self, node):
        return list(self.pods.values()) if node is None else list(self.by_node.get(node, {}).values())

    def save(self):
        """pods.json follows the API's changes (tests read it)."""
        if SIM_NODES:
            return
        path = os.path.join(STATE, "pods.json")
        with open(path + ".tmp", "w") as f:
            json.dump(list(self.pods.values()), f)
        os.rename(path + ".tmp", path)
        st = os.stat(path)
        self.file_stamp = (st.st_mtime_ns, st.st_size, st.st_ino)

    def reread(self):
        """A test edited pods.json: its differences become events."""
        path = os.path.join(STATE, "pods.json")
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == self.file_stamp:
            return
        try:
            with open(path) as f:
                pods = {p["metadata"]["uid"]: p for p in json.load(f)}
        except ValueError:
            return  # caught mid-write: read it again next time
        self.file_stamp = stamp
        for uid in [u for u in self.pods if u not in pods]:
            self.delete(uid)
        for uid, p in pods.items():
            old = self.pods.get(uid)
            if old is None or strip_rv(old) != strip_rv(p):
                self.put(p)


def strip_rv(pod):
    meta = dict(pod["metadata"])
    meta.pop("resourceVersion", None)
    return json.dumps(dict(pod, metadata=meta), sort_keys=True)


store = Store()


def sim_pod(node, i):
    name = "%s-pod-%d-%x" % (node, i, random.getrandbits(24))
    uid = str(uuid.uuid4())
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "sim", "uid": uid, "labels": {"app": "sim"}},
            "spec": {"nodeName": node, "containers": [{"name": "app", "image": "x"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "app", "containerID": "containerd://" + uuid.uuid4().hex + uuid.uuid4().hex}]}}


def controls():
    """Every 0.1 s: test edits of pods.json, one-shot controls, churn."""
    churn_debt = 0.0
    last = time.time()
    while True:
        time.sleep(0.1)
        now_t = time.time()
        faults = read_json("faults.json", {})
        with lock:
            if not SIM_NODES:
                store.reread()
            once = [k for k in ("compact", "expire_watches", "drop_watches") if faults.get(k)]
            if once:
                if faults.get("compact"):
                    store.compacted = rv[0]
                    store.history = []
                for key, how in (("expire_watches", "expire"), ("drop_watches", "drop")):
                    if faults.get(key):
                        for ws in store.watchers.values():
                            for w in ws:
                                w.stop(how)
                for k in once:
                    del faults[k]
                path = os.path.join(STATE, "faults.json")
                with open(path + ".tmp", "w") as out:
                    json.dump(faults, out)
                os.rename(path + ".tmp", path)
            churn_debt += faults.get("churn_per_s", 0) * (now_t - last)
            while churn_debt >= 1 and store.pods:
                churn_debt -= 1
                old = random.choice(list(store.pods.values()))
                store.delete(old["metadata"]["uid"])
                store.put(sim_pod(old["spec"]["nodeName"], random.getrandbits(16)))
            if not store.pods:
                churn_debt = 0
        last = now_t


def status(code, reason, message, details=None):
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
         "message": message, "reason": reason, "code": code}
    if details:
        s["details"] = details
    return code, s


def node_selector(url):
    for sel in parse_qs(url.query).get("fieldSelector", []):
        if sel.startswith("spec.nodeName="):
            return sel.split("=", 1)[1]
    return None


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

    def setup(self):
        # the TLS handshake here, in the connection's thread, not in the
        # accept loop: a thousand clients connecting at once are not served
        # one handshake at a time
        self.request.settimeout(30)
        self.request.do_handshake()
        self.request.settimeout(None)
        super().setup()

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
        if code is None:
            return  # a watch: streamed and logged already
        entry["status"] = code
        entry["reply_reason"] = obj.get("reason", "") if isinstance(obj, dict) else ""
        self.log_entry(entry)
        self.reply(code, obj, headers)

    def log_entry(self, entry):
        with log_lock:
            with open(os.path.join(STATE, "requests.log"), "a") as f:
                f.write(json.dumps(entry) + "\n")

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
            if verb == "list" and "watch=true" in url.query.split("&"):
                verb = "watch"
                for forbid in faults.get("forbid", []):
                    if forbid[:2] == ["watch", "pods"]:
                        return status(403, "Forbidden", 'pods is forbidden: User "system:serviceaccount:'
                                      'reflexd:reflexd" cannot watch resource "pods" in API group ""') + ({},)
                res = self.watch(url, entry, faults)
                return (res or (None, None)) + ({},)
            handler = getattr(self, "api_%s_%s" % (verb, resource.replace("/", "_")))
            with lock:
                return handler(m, url, entry["body"], faults) + ({},)
        return status(404, "NotFound", "the server could not find the requested resource") + ({},)

    # ---- pods ----
    def api_list_pods(self, m, url, body, faults):
        node = node_selector(url)
        return 200, {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": str(rv[0])},
                     "items": store.on_node(node)}

    def find_pod(self, ns, name):
        for p in store.pods.values():
            if p["metadata"]["namespace"] == ns and p["metadata"]["name"] == name:
                return None, p
        return None, None

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def watch(self, url, entry, faults):
        """A watch, streamed until its timeout, a stop, or the client leaving."""
        q = parse_qs(url.query)
        node = node_selector(url)
        since = int((q.get("resourceVersion") or ["0"])[0] or 0)
        bookmarks = (q.get("allowWatchBookmarks") or [""])[0] == "true"
        limit = min(float((q.get("timeoutSeconds") or ["1800"])[0]), faults.get("watch_timeout", 1800))
        every = faults.get("bookmark_every", 60)
        lag = faults.get("watch_lag", 0)
        w = Watcher(node)
        with lock:
            gone = since and since < store.compacted
            if not gone:
                w.queue = [h for h in store.history if h[0] > since and node in (None, h[4])]
                store.watchers.setdefault(node, set()).add(w)
        expired = status(410, "Expired", "too old resource version: %d (%d)" % (since, store.compacted))[1]
        if gone and faults.get("gone_as_http"):
            return 410, expired
        entry["status"] = 200
        self.log_entry(entry)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        how = "timeout"
        try:
            if gone:
                self.chunk(json.dumps({"type": "ERROR", "object": expired}).encode() + b"\n")
                how = "expired"
                return None
            end = time.time() + limit
            next_bookmark = time.time() + every
            while True:
                with w.cond:
                    t = time.time()
                    ready = [h for h in w.queue if h[1] + lag <= t]
                    w.queue = w.queue[len(ready):]
                    stop = w.end
                    if not ready and not stop:
                        wake = min(end, next_bookmark, w.queue[0][1] + lag if w.queue else end) - t
                        if wake > 0:
                            w.cond.wait(wake)
                            continue
                if stop == "drop":
                    how = "dropped"
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return None
                if stop == "expire":
                    how = "expired"
                    self.chunk(json.dumps({"type": "ERROR", "object": status(
                        410, "Expired", "The resourceVersion for the provided watch is too old.")[1]})
                        .encode() + b"\n")
                    break
                if ready:
                    self.chunk(b"".join(h[3].encode() + b"\n" for h in ready))
                t = time.time()
                if bookmarks and t >= next_bookmark:
                    self.chunk(json.dumps({"type": "BOOKMARK", "object": {
                        "kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": str(rv[0])}}})
                        .encode() + b"\n")
                    next_bookmark = t + every
                if t >= end:
                    break
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            how = "client left"
        finally:
            with lock:
                store.watchers.get(node, set()).discard(w)
            self.close_connection = True
            self.log_entry(dict(entry, watch_end=how, time=time.time()))
        return None

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
        store.delete(pod["metadata"]["uid"])
        store.save()
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
        store.delete(pod["metadata"]["uid"])
        store.save()
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
        store.put(pod)
        store.save()
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
    if SIM_NODES:
        for n in range(SIM_NODES):
            store.load([sim_pod("node-%d" % n, i) for i in range(SIM_PODS)])
    else:
        store.load(read_json("pods.json", []))
        store.save()
    for lease in read_json("leases.json", []):
        lease["metadata"]["resourceVersion"] = next_rv()
        lease["metadata"].setdefault("uid", str(uuid.uuid4()))
        leases[(lease["metadata"]["namespace"], lease["metadata"]["name"])] = lease
    threading.Thread(target=controls, daemon=True).start()
    ThreadingHTTPServer.request_queue_size = 4096
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(CERT, KEY)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.load_verify_locations(os.path.join(os.path.dirname(CERT), "ca.crt"))
    server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
