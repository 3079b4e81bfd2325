#!/usr/bin/env python3
"""Writes the benchmark pipelines: a chain of one-step tasks, and a chain passing a large result."""
import sys

def chain(n: int) -> str:
    tasks = []
    for i in range(n):
        after = f"\n      runAfter: [t{i-1}]" if i else ""
        tasks.append(f"""    - name: t{i}{after}
      taskRef:
        name: noop""")
    return f"""apiVersion: tekton.dev/v1
kind: Task
metadata:
  name: noop
spec:
  steps:
    - name: noop
      image: busybox
      command: ["true"]
---
apiVersion: tekton.dev/v1
kind: PipelineRun
metadata:
  generateName: chain-{n}-
spec:
  pipelineSpec:
    tasks:
""" + "\n".join(tasks) + "\n"

def relay(n: int, size: int) -> str:
    tasks = [f"""    - name: t0
      taskSpec:
        results: [{{name: out}}]
        steps:
          - name: make
            image: busybox
            script: head -c {size} /dev/zero | tr '\\0' a > $(results.out.path)"""]
    for i in range(1, n):
        tasks.append(f"""    - name: t{i}
      params: [{{name: in, value: "$(tasks.t{i-1}.results.out)"}}]
      taskSpec:
        params: [{{name: in}}]
        results: [{{name: out}}]
        steps:
          - name: pass
            image: busybox
            script: |
              printf '%s' "$(params.in)" > $(results.out.path)""")
    return f"""apiVersion: tekton.dev/v1
kind: PipelineRun
metadata:
  generateName: relay-{size}-
spec:
  pipelineSpec:
    tasks:
""" + "\n".join(tasks) + f"""
    results:
      - name: size
        value: $(tasks.t{n-1}.results.out)
"""

if __name__ == "__main__":
    out = sys.argv[1]
    open(f"{out}/chain-200.yaml", "w").write(chain(200))
    open(f"{out}/relay-1mib.yaml", "w").write(relay(10, 1024 * 1024))
    open(f"{out}/relay-1b.yaml", "w").write(relay(10, 1))
