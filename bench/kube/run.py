#!/usr/bin/env python3
"""Controller benchmark against ../shared/kube-emu (an API server and kubelet emulator).

1. API requests per run: one TaskRun (two steps), one PipelineRun (three sequential tasks,
   one step each) and the same PipelineRun naming its Task by `taskRef` created while `slipway controller` watches; every request the emulator serves
   from the creation to the run's end is counted (`emu.py -v` logs each one), by verb and
   resource, the benchmark's own create excluded and its own reads made on a separate watch
   opened before.
2. Throughput under the client rate limit: RUNS PipelineRuns created at once, each one Pod
   (their Pods name a scheduler nobody runs, so they stay Pending and nothing executes); the
   time from the first create to the last Pod created, against the floor RUNS / QPS seconds.
3. The controller's resident memory with those RUNS runs live.

    bench/kube/run.py [--runs 1000] [--qps 50] [--burst 100]
        SLIPWAY_BIN=path (default: $CARGO_TARGET_DIR or target, /release/slipway)
"""

import argparse
import collections
import concurrent.futures
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EMU = os.path.join(ROOT, "..", "shared", "kube-emu", "emu.py")
DOCKER_HOST = "unix:///tmp/slipway-docker/docker.sock"
STEP_IMAGE = "127.0.0.1:5000/library/busybox:latest"
NS = "bench"


def sh(*args, **kw):
    return subprocess.run(args, check=True, **kw)


class Emulator:
    def __init__(self, work):
        self.kubeconfig = os.path.join(work, "kubeconfig")
        self.log_path = os.path.join(work, "emu.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, EMU, "--port", "0", "--kubeconfig", self.kubeconfig, "-v",
             "--docker-host", DOCKER_HOST],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            text = open(self.log_path).read()
            m = re.search(r"kube-emu listening on (http://\S+)", text)
            if m and os.path.exists(self.kubeconfig):
                self.url = m.group(1)
                return
            time.sleep(0.2)
        raise SystemExit("kube-emu did not start:\n" + open(self.log_path).read())

    def request(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        for attempt in range(5):
            req = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=60) as r:
                    return json.loads(r.read() or b"null")
            except (ConnectionResetError, urllib.error.URLError):
                # The emulator's listen backlog is short; a reset request was not served.
                if attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))

    def lines(self):
        with open(self.log_path) as f:
            return f.read().splitlines()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


REQUEST = re.compile(r'"(GET|POST|PUT|PATCH|DELETE) (\S+) HTTP')


def classify(method, path):
    """`verb resource[/subresource]` of one logged request."""
    path = path.split("?")[0]
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"]:
        parts = parts[2:]
    elif parts[:1] == ["apis"]:
        parts = parts[3:]
    if parts[:1] == ["namespaces"] and len(parts) > 2:
        parts = parts[2:]
    resource = parts[0] if parts else "?"
    sub = "/" + parts[2] if len(parts) > 2 else ""
    watch = "watch=true" in path or "watch=1" in path
    verb = {"GET": "get" if len(parts) > 1 else ("watch" if watch else "list"),
            "POST": "create", "PUT": "update", "PATCH": "patch",
            "DELETE": "delete"}[method]
    return f"{verb} {resource}{sub}"


def count(lines):
    tally = collections.Counter()
    for line in lines:
        m = REQUEST.search(line)
        if m:
            tally[classify(m.group(1), m.group(2))] += 1
    return tally


def succeeded(obj):
    for c in obj.get("status", {}).get("conditions", []):
        if c.get("type") == "Succeeded" and c.get("status") in ("True", "False"):
            return c
    return None


def wait_done(emu, path, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        obj = emu.request("GET", path + "?bench=poll")
        c = succeeded(obj)
        if c:
            return c
        time.sleep(0.5)
    raise SystemExit(f"{path} did not finish")


def not_ours(lines):
    """All but the benchmark's own requests (those carry `bench=`)."""
    return [l for l in lines if "bench=" not in l]


def measure_requests(emu, kind, body, plural):
    mark = len(emu.lines())
    obj = emu.request("POST", f"/apis/tekton.dev/v1/namespaces/{NS}/{plural}?bench=create", body)
    cond = wait_done(emu, f"/apis/tekton.dev/v1/namespaces/{NS}/{plural}/{obj['metadata']['name']}")
    time.sleep(3)  # the last status writes and the Pod's deletion
    lines = not_ours(emu.lines()[mark:])
    tally = count(lines)
    leases = sum(v for k, v in tally.items() if "leases" in k)
    return cond, tally, sum(tally.values()) - leases, leases


def step(name, text):
    return {"name": name, "image": STEP_IMAGE, "script": f"echo {text}"}


def taskrun():
    return {"apiVersion": "tekton.dev/v1", "kind": "TaskRun",
            "metadata": {"generateName": "bench-tr-"},
            "spec": {"taskSpec": {"steps": [step("one", "1"), step("two", "2")]}}}


def pipelinerun(tasks, scheduler=None):
    spec = {"pipelineSpec": {"tasks": [
        {"name": f"t{i}", **({"runAfter": [f"t{i-1}"]} if i else {}),
         "taskSpec": {"steps": [step("s", i)]}} for i in range(tasks)]}}
    if scheduler:
        spec["taskRunTemplate"] = {"podTemplate": {"schedulerName": scheduler}}
    return {"apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
            "metadata": {"generateName": "bench-pr-"}, "spec": spec}


def referring_pipelinerun(tasks):
    """A PipelineRun of `tasks` sequential tasks, each by `taskRef` to one Task (created apart)."""
    spec = {"pipelineSpec": {"tasks": [
        {"name": f"t{i}", **({"runAfter": [f"t{i-1}"]} if i else {}),
         "taskRef": {"name": "bench-echo"}} for i in range(tasks)]}}
    return {"apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
            "metadata": {"generateName": "bench-pr-ref-"}, "spec": spec}


def echo_task():
    return {"apiVersion": "tekton.dev/v1", "kind": "Task", "metadata": {"name": "bench-echo"},
            "spec": {"steps": [step("s", "by-ref")]}}


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def watch_pods(emu, seen, stop):
    """Records when each Pod of the namespace is first seen (ADDED)."""
    req = urllib.request.Request(emu.url + f"/api/v1/namespaces/{NS}/pods?watch=true&bench=watch")
    with urllib.request.urlopen(req, timeout=3600) as r:
        for raw in r:
            if stop.is_set():
                return
            ev = json.loads(raw)
            if ev.get("type") == "ADDED":
                seen.setdefault(ev["object"]["metadata"]["name"], time.monotonic())


def flood(emu, runs, qps, controller):
    seen, stop = {}, threading.Event()
    threading.Thread(target=watch_pods, args=(emu, seen, stop), daemon=True).start()
    time.sleep(1)
    body = pipelinerun(1, scheduler="slipway-bench-nobody")
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: emu.request(
            "POST", f"/apis/tekton.dev/v1/namespaces/{NS}/pipelineruns?bench=create", body),
            range(runs)))
    created = time.monotonic() - start
    deadline = time.time() + 20 * runs / qps + 300
    while len(seen) < runs and time.time() < deadline:
        time.sleep(0.2)
    last = max(seen.values()) - start if seen else float("nan")
    mem = rss_mb(controller.pid)
    stop.set()
    return len(seen), created, last, mem


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--qps", type=float, default=50)
    ap.add_argument("--burst", type=int, default=100)
    args = ap.parse_args()
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    binary = os.environ.get("SLIPWAY_BIN", os.path.join(target, "release", "slipway"))
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"no slipway binary at {binary} (cargo build --release -p slipway)")
    sh("bash", os.path.join(ROOT, "scripts/docker-env.sh"), stdout=subprocess.DEVNULL)
    work = tempfile.mkdtemp(prefix="slipway-bench-kube-")
    image = "127.0.0.1:5000/slipway-bench/slipway:latest"
    env = dict(os.environ, SLIPWAY_BIN=binary, SLIPWAY_HOME=work, NO_COLOR="1")
    sh("bash", os.path.join(ROOT, "scripts/image.sh"), image, "--mode", "privileged",
       env=env, stdout=subprocess.DEVNULL)
    emu = Emulator(work)
    controller = None
    try:
        env["KUBECONFIG"] = emu.kubeconfig
        sh("kubectl", "apply", "-f", os.path.join(ROOT, "deploy/tekton"), env=env,
           stdout=subprocess.DEVNULL)
        emu.request("POST", "/api/v1/namespaces?bench=setup",
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        clog = open(os.path.join(work, "controller.log"), "w")
        controller = subprocess.Popen(
            [binary, "controller", "--namespace", NS, "--qps", str(args.qps),
             "--burst", str(args.burst), "--kube-image", image],
            env=env, stdout=clog, stderr=subprocess.STDOUT)
        emu.request("POST", f"/apis/tekton.dev/v1/namespaces/{NS}/tasks?bench=setup", echo_task())
        time.sleep(3)
        print(f"# {time.strftime('%Y-%m-%d')}, slipway controller --qps {args.qps:g} "
              f"--burst {args.burst} against kube-emu\n")
        for what, kind, body, plural in [
            ("TaskRun, 2 steps", "TaskRun", taskrun(), "taskruns"),
            ("PipelineRun, 3 tasks", "PipelineRun", pipelinerun(3), "pipelineruns"),
            ("PipelineRun, 3 tasks by taskRef", "PipelineRun", referring_pipelinerun(3),
             "pipelineruns"),
        ]:
            measure_requests(emu, kind, body, plural)  # warm: images, caches
            cond, tally, total, leases = measure_requests(emu, kind, body, plural)
            print(f"## {what}: {cond.get('reason')}, {total} requests "
                  f"(+{leases} Lease renewals meanwhile)")
            for k, v in sorted(tally.items(), key=lambda kv: -kv[1]):
                print(f"    {v:4d}  {k}")
        before = rss_mb(controller.pid)
        n, created, last, mem = flood(emu, args.runs, args.qps, controller)
        floor = args.runs / args.qps
        print(f"\n## {args.runs} PipelineRuns at once: {n} Pods created; creates sent in "
              f"{created:.1f} s; last Pod at {last:.1f} s; floor {floor:.1f} s; "
              f"ratio {last / floor:.2f}x")
        print(f"## controller RSS: {before:.1f} MB idle, {mem:.1f} MB with {args.runs} live runs")
    finally:
        if controller:
            controller.send_signal(signal.SIGTERM)
            try:
                controller.wait(timeout=60)
            except subprocess.TimeoutExpired:
                controller.kill()
        emu.stop()


if __name__ == "__main__":
    main()
