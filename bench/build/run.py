#!/usr/bin/env python3
"""Image build benchmarks: slipway build against docker build (Debian's dockerd, classic
builder) and buildah bud on the same Dockerfile and context, in one run.

    bench/build/run.py --slipway target/release/slipway [--runs 3] [--blob-mb 100]

Needs the test environment (scripts/docker-env.sh: dockerd and the loopback registry holding
the base image) and Debian's buildah. Prints a Markdown table of medians and ratios.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

DOCKER = ["docker", "-H", "unix:///tmp/slipway-docker/docker.sock"]
BUILDAH = ["buildah", "--storage-driver", "overlay"]
BASE = "127.0.0.1:5000/library/ubuntu:latest"


def dockerfile(blob_mb):
    return f"""FROM {BASE}
RUN mkdir -p /opt/deps && i=0 && while [ $i -lt 2000 ]; do echo "dependency $i" > /opt/deps/f$i; i=$((i+1)); done
RUN head -c {blob_mb * 1024 * 1024} /dev/urandom > /opt/blob.bin
COPY src/ /app/src/
RUN cat /app/src/* | sha256sum > /app/sum && ls -l /app/src | wc -l > /app/count
"""


def make_context(root, blob_mb):
    ctx = os.path.join(root, "ctx")
    os.makedirs(os.path.join(ctx, "src"), exist_ok=True)
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write(dockerfile(blob_mb))
    for i in range(500):
        with open(os.path.join(ctx, "src", f"module{i}.txt"), "w") as f:
            f.write(f"module {i}\n" * 50)
    return ctx


def run(cmd, env=None):
    t = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    elapsed = time.monotonic() - t
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr.decode()[-2000:]}")
    return elapsed


def peak_rss_mb(cmd):
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr.decode()[-2000:]}")
    return int(p.stderr.decode().strip().splitlines()[-1]) / 1024


class Tools:
    def __init__(self, slipway, ctx, store):
        self.ctx, self.store, self.binary = ctx, store, slipway
        self.denv = dict(os.environ, DOCKER_BUILDKIT="0")

    def docker(self, cold):
        extra = ["--no-cache"] if cold else []
        return run(DOCKER + ["build", "-q", *extra, "-t", "slipway-bench/app", self.ctx], self.denv)

    def buildah(self, cold):
        extra = ["--no-cache"] if cold else []
        return run(BUILDAH + ["bud", "--tls-verify=false", "--layers", "-q", *extra,
                              "-t", "slipway-bench-app", self.ctx])

    def slipway_cmd(self, cold, extra=()):
        return [self.binary, "build", "--no-push", "-c", self.ctx, "--cache-dir", self.store,
                f"--cache={'false' if cold else 'true'}", *extra]

    def slipway(self, cold, extra=()):
        return run(self.slipway_cmd(cold, extra))


def touch_one(ctx, n):
    with open(os.path.join(ctx, "src", "module7.txt"), "a") as f:
        f.write(f"change {n} {time.time()}\n")


def median(fn, runs, before=None):
    times = []
    for i in range(runs):
        if before:
            before(i)
        times.append(fn())
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--slipway", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--blob-mb", type=int, default=100)
    a = ap.parse_args()
    root = tempfile.mkdtemp(prefix="slipway-bench-build-")
    try:
        ctx = make_context(root, a.blob_mb)
        t = Tools(os.path.abspath(a.slipway), ctx, os.path.join(root, "store"))
        # Base image local for all three before anything is timed.
        run(DOCKER + ["pull", "-q", BASE])
        run(BUILDAH + ["pull", "--tls-verify=false", "-q", BASE])
        t.slipway(cold=False)
        rows = []
        for name, fn in [("docker build", t.docker), ("buildah bud", t.buildah),
                         ("slipway build", t.slipway)]:
            cold = median(lambda: fn(True), a.runs)
            fn(False)
            nochange = median(lambda: fn(False), a.runs)
            onefile = median(lambda: fn(False), a.runs, before=lambda i: touch_one(ctx, i))
            rows.append((name, cold, nochange, onefile))
        print(f"| tool | cold | rebuild, nothing changed | rebuild, one file changed |")
        print("| --- | --- | --- | --- |")
        for name, c, n, o in rows:
            print(f"| {name} | {c:.2f} s | {n:.2f} s | {o:.2f} s |")
        d, b, s = rows
        print()
        print(f"slipway/docker: cold {s[1]/d[1]:.2f}x, nothing changed {s[2]/d[2]:.2f}x, one file {s[3]/d[3]:.2f}x")
        print(f"slipway/buildah: cold {s[1]/b[1]:.2f}x, nothing changed {s[2]/b[2]:.2f}x, one file {s[3]/b[3]:.2f}x")
        plain = median(lambda: t.slipway(True), a.runs)
        repro = median(lambda: t.slipway(True, ["--reproducible"]), a.runs)
        print(f"reproducible/plain (cold): {repro:.2f} s / {plain:.2f} s = {repro/plain:.3f}x")
        for mb in (a.blob_mb, a.blob_mb * 4):
            with open(os.path.join(ctx, "Dockerfile"), "w") as f:
                f.write(dockerfile(mb))
            rss = peak_rss_mb(t.slipway_cmd(True))
            print(f"peak RSS, cold build with a {mb} MB layer: {rss:.1f} MB")
    finally:
        subprocess.run(DOCKER + ["rmi", "-f", "slipway-bench/app"], capture_output=True)
        subprocess.run(BUILDAH + ["rmi", "-f", "slipway-bench-app"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
