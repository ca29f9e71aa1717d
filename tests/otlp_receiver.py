#!/usr/bin/env python3
"""An OTLP/HTTP logs receiver for the tests, independent of reflexd's code:
payloads are decoded by `protoc --decode` (Debian's protobuf-compiler) with
the .proto files in proto/, never by reflexd's generated C.

Each request is answered by the next action of --schedule (comma-separated),
then by the action in --control FILE if that file exists, else 200:
  200            accept
  429:N          429 Too Many Requests, Retry-After: N (seconds)
  429date:N      the same with Retry-After as an HTTP date N seconds ahead
  503, 502, 504, 400, 500 ...   that status
  sleep:N        wait N seconds, then accept
  partial:N      accept, with a partial success rejecting N records

With --tls DIR it serves HTTPS and requires a client certificate.

A JSON payload (Content-Type: application/json, OTLP's http/json) is read
strictly by Google's protobuf JSON parser (python3-protobuf's json_format,
unknown fields refused) into the message compiled from proto/, then goes
the protoc way like any other; its keys must be lowerCamelCase and its
64-bit integers strings, as the OTLP specification says. Replies to it
are JSON.

Every request appends one JSON line to OUT/requests.jsonl: its number,
status, method, path, content type and encoding, the names of all its
headers, and (when the payload
decoded) its records: time, severity, event name, body and attributes, the
resource attributes, and the schema URLs of the resource and scope. Accepted requests' records also go to
OUT/records.jsonl, one a line.
"""
import argparse
import email.utils
import gzip
import json
import os
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PROTO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "proto")
SERVICE = "opentelemetry/proto/collector/logs/v1/logs_service.proto"
PKG = "opentelemetry.proto.collector.logs.v1"


def protoc(mode, message, data):
    r = subprocess.run(["protoc", "--%s=%s.%s" % (mode, PKG, message), "-I", PROTO_DIR, SERVICE],
                       input=data, capture_output=True, check=False)
    if r.returncode:
        raise ValueError(r.stderr.decode(errors="replace").strip())
    return r.stdout


def unescape(s):
    """A text-format string literal's body (C escapes, octal bytes) as text."""
    out = bytearray()
    i = 0
    simple = {"n": 10, "t": 9, "r": 13, '"': 34, "'": 39, "\\": 92}
    while i < len(s):
        c = s[i]
        if c != "\\":
            out += c.encode()
            i += 1
            continue
        n = s[i + 1]
        if n in simple:
            out.append(simple[n])
            i += 2
        elif n in "01234567":
            j = i + 1
            while j < len(s) and j < i + 4 and s[j] in "01234567":
                j += 1
            out.append(int(s[i + 1:j], 8))
            i = j
        elif n == "x":
            out.append(int(s[i + 2:i + 4], 16))
            i += 4
        else:
            out += n.encode()
            i += 2
    return out.decode("utf-8")


def parse_text(text):
    """protoc's text format into nested dicts; every field is a list."""
    root = {}
    stack = [root]
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line == "}":
            stack.pop()
            continue
        if line.endswith("{"):
            child = {}
            stack[-1].setdefault(line[:-1].strip(), []).append(child)
            stack.append(child)
            continue
        key, _, value = line.partition(": ")
        if value.startswith('"'):
            value = unescape(value[1:-1])
        else:
            try:
                value = int(value)
            except ValueError:
                pass
        stack[-1].setdefault(key, []).append(value)
    return root


def any_value(v):
    for k in ("string_value", "int_value"):
        if k in v:
            return v[k][0]
    if "double_value" in v:
        return float(v["double_value"][0])
    if "bool_value" in v:
        return v["bool_value"][0] == "true"
    if "kvlist_value" in v:
        return {kv["key"][0]: any_value(kv.get("value", [{}])[0])
                for kv in v["kvlist_value"][0].get("values", [])}
    if "array_value" in v:
        return [any_value(x) for x in v["array_value"][0].get("values", [])]
    return None


def attributes(msg):
    return {a["key"][0]: any_value(a.get("value", [{}])[0]) for a in msg.get("attributes", [])}


def summarize(req):
    records, resources = [], []
    for rl in req.get("resource_logs", []):
        res = attributes(rl.get("resource", [{}])[0])
        resources.append(res)
        for sl in rl.get("scope_logs", []):
            scope = sl.get("scope", [{}])[0]
            for r in sl.get("log_records", []):
                records.append({
                    "resource_schema_url": rl.get("schema_url", [""])[0],
                    "scope_schema_url": sl.get("schema_url", [""])[0],
                    "scope": scope.get("name", [""])[0],
                    "time_unix_nano": r.get("time_unix_nano", [0])[0],
                    "observed_time_unix_nano": r.get("observed_time_unix_nano", [0])[0],
                    "severity_number": r.get("severity_number", ["SEVERITY_NUMBER_UNSPECIFIED"])[0],
                    "severity_text": r.get("severity_text", [""])[0],
                    "event_name": r.get("event_name", [""])[0],
                    "body": any_value(r.get("body", [{}])[0]),
                    "attributes": attributes(r),
                    "resource": res,
                })
    return records, resources


_JSON_REQUEST = []


def json_to_binary(raw, out):
    """An http/json payload as the binary message, by Google's parser (its
    Python classes compiled into the directory out at first use)."""
    if not _JSON_REQUEST:
        os.makedirs(out, exist_ok=True)
        subprocess.run(["protoc", "-I", PROTO_DIR, "--python_out", out]
                       + [os.path.relpath(os.path.join(d, f), PROTO_DIR)
                          for d, _, fs in os.walk(PROTO_DIR) for f in fs if f.endswith(".proto")],
                       check=True)
        sys.path.insert(0, out)
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
        _JSON_REQUEST.append(logs_service_pb2.ExportLogsServiceRequest)
    from google.protobuf import json_format
    try:
        msg = json_format.Parse(raw, _JSON_REQUEST[0]())
    except json_format.ParseError as e:
        raise ValueError("json: %s" % e) from e
    return msg.SerializeToString()


INT64_FIELDS = ("timeUnixNano", "observedTimeUnixNano", "intValue")


def json_problems(doc, where="$"):
    """What in a parsed OTLP/JSON document breaks the OTLP encoding rules:
    snake_case keys, 64-bit integers that are not strings."""
    out = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            if "_" in k:
                out.append("%s.%s: not lowerCamelCase" % (where, k))
            if k in INT64_FIELDS and not isinstance(v, str):
                out.append("%s.%s: a 64-bit integer not as a string" % (where, k))
            out += json_problems(v, "%s.%s" % (where, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += json_problems(v, "%s[%d]" % (where, i))
    return out


def varint(data, i):
    shift = value = 0
    while True:
        b = data[i]
        value |= (b & 0x7F) << shift
        i += 1
        if b < 0x80:
            return value, i
        shift += 7


def fields(data):
    """(field number, length-delimited payload) of a message's fields."""
    i = 0
    while i < len(data):
        key, i = varint(data, i)
        wire = key & 7
        if wire == 2:
            n, i = varint(data, i)
            yield key >> 3, data[i:i + n]
            i += n
        elif wire == 0:
            _, i = varint(data, i)
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            raise ValueError("wire type %d" % wire)


def count_records(data):
    """LogRecords in an ExportLogsServiceRequest, by walking the wire format:
    resource_logs (1) > scope_logs (2) > log_records (2)."""
    return sum(1 for f, rl in fields(data) if f == 1
               for g, sl in fields(rl) if g == 2
               for h, _ in fields(sl) if h == 2)


def count_json_records(doc):
    """LogRecords in an OTLP/JSON ExportLogsServiceRequest."""
    return sum(len(sl.get("logRecords", [])) for rl in doc.get("resourceLogs", [])
               for sl in rl.get("scopeLogs", []))


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.n = 0
        self.schedule = [a for a in args.schedule.split(",") if a] if args.schedule else []
        self.control = args.control
        self.out = args.out
        self.count_only = args.count_only

    def next_action(self):
        with self.lock:
            self.n += 1
            n = self.n
            if self.schedule:
                return n, self.schedule.pop(0)
        if self.control and os.path.exists(self.control):
            with open(self.control) as f:
                return n, f.read().strip() or "200"
        return n, "200"

    def log(self, name, obj):
        with self.lock, open(os.path.join(self.out, name), "a") as f:
            f.write(json.dumps(obj, ensure_ascii=False) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        st = self.server.state
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        n, action = st.next_action()
        entry = {"n": n, "action": action, "method": "POST", "path": self.path,
                 "content_type": self.headers.get("Content-Type", ""),
                 "encoding": self.headers.get("Content-Encoding", ""),
                 "user_agent": self.headers.get("User-Agent", ""),
                 "x_test": self.headers.get("X-Test", ""), "bytes": len(raw),
                 "header_names": sorted(k.lower() for k in self.headers.keys()),
                 "client_cn": client_cn(self.connection)}
        is_json = entry["content_type"] == "application/json"
        try:
            data = gzip.decompress(raw) if entry["encoding"] == "gzip" else raw
            if st.count_only:
                # benchmarks: a record count without the cost of protoc or
                # of the protobuf JSON parser
                entry["count"] = count_json_records(json.loads(data)) if is_json else count_records(data)
            else:
                if is_json:
                    entry["json_problems"] = json_problems(json.loads(data))
                    data = json_to_binary(data, os.path.join(st.out, "pb2"))
                req = parse_text(protoc("decode", "ExportLogsServiceRequest", data).decode())
                entry["records"], entry["resources"] = summarize(req)
        except (ValueError, OSError, EOFError) as e:
            entry["decode_error"] = str(e)
        kind, _, arg = action.partition(":")
        status, headers, body = 200, [], b""
        if kind == "sleep":
            time.sleep(float(arg))
        elif kind == "429" and arg:
            status, headers = 429, [("Retry-After", arg)]
        elif kind == "429date":
            when = email.utils.formatdate(time.time() + float(arg), usegmt=True)
            status, headers = 429, [("Retry-After", when)]
        elif kind == "partial" and is_json:
            body = json.dumps({"partialSuccess": {"rejectedLogRecords": arg,
                                                  "errorMessage": "test rejects %s" % arg}}).encode()
            headers = [("Content-Type", "application/json")]
        elif kind == "partial":
            body = protoc("encode", "ExportLogsServiceResponse",
                          ('partial_success { rejected_log_records: %s error_message: "test rejects %s" }'
                           % (arg, arg)).encode())
            headers = [("Content-Type", "application/x-protobuf")]
        elif kind.isdigit():
            status = int(kind)
            if status >= 400:
                body = b"receiver says %d" % status
                headers = [("Content-Type", "text/plain")]
        if status == 200 and not body and is_json:
            body, headers = b"{}", [("Content-Type", "application/json")]
        elif status == 200 and not body:
            body = protoc("encode", "ExportLogsServiceResponse", b"")
            headers = [("Content-Type", "application/x-protobuf")]
        entry["status"] = status
        if "decode_error" in entry and status == 200:
            status, body = 400, entry["decode_error"].encode()
            entry["status"] = status
        st.log("requests.jsonl", entry)
        if status == 200:
            for r in entry.get("records", []):
                r["request"] = n
                st.log("records.jsonl", r)
        self.reply(status, body, headers)


def client_cn(conn):
    """The common name of the TLS client's certificate, or ""."""
    cert = conn.getpeercert() if isinstance(conn, ssl.SSLSocket) else None
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return ""


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--schedule", default="")
    p.add_argument("--control", default="")
    p.add_argument("--count-only", action="store_true",
                   help="count records by walking the wire format, without protoc (benchmarks)")
    p.add_argument("--tls", metavar="DIR",
                   help="HTTPS with DIR/server.crt and server.key; a client certificate "
                        "signed by DIR/ca.crt is required")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(args.tls, "server.crt"), os.path.join(args.tls, "server.key"))
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(os.path.join(args.tls, "ca.crt"))
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.daemon_threads = True
    srv.state = State(args)
    print("ready", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
