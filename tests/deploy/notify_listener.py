#!/usr/bin/env python3
"""A service manager's end of the notify protocol (sd_notify(3)), as
systemd reads it: an AF_UNIX datagram socket at PATH ('@name': Linux's
abstract namespace). Prints each datagram's lines as "MONOTONIC_MS KEY=VALUE",
and on READY=1 also "MONOTONIC_MS ready-logged=yes|no": whether LOG already
held reflexd's "info: ready" line (its sensors attached, its rules loaded)
when READY=1 arrived. Runs until killed.

usage: notify_listener.py PATH LOG
"""
import os
import socket
import sys
import time

path, log = sys.argv[1], sys.argv[2]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind("\0" + path[1:] if path.startswith("@") else path)
print("listening", flush=True)
while True:
    data = sock.recv(4096).decode()
    now = int(time.monotonic() * 1000)
    for line in data.split("\n"):
        print(now, line, flush=True)
        if line == "READY=1":
            with open(log) as f:
                logged = "reflexd: info: ready" in f.read()
            print(now, "ready-logged=" + ("yes" if logged else "no"), flush=True)
