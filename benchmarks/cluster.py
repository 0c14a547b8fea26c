"""The cluster path's cost per run against `--workers 2` on one machine, and the study profile's projected wall time
on clusters of 2-core nodes.

1. Overhead: the same training steps (default: the smoke profile's A, B, C; --profile quick for runs of minutes)
   trained twice from nothing, once with workers.execute_side_by_side (2 workers, one thread each) and once with
   cluster.execute_on_cluster on a Ray cluster of two 1-CPU nodes this script starts on 127.0.0.1 (or the one at
   --cluster). Printed: each wall time, the joining of the cluster (start-up), the bytes a task returns and the
   seconds the driver takes to write them back, and the extra wall seconds per run.
2. Projection: the study profile's archived runs (results/study/*/seed*/results.json: training and evaluation
   seconds, one thread each; GAP+'s own epochs only) scheduled longest first on N nodes of 2 slots, plus the
   measured overhead per run: as the cluster path schedules them (every seed a task of its own, GAP's seed k and
   GAP+'s seed k one chain) and, for comparison, as it did before (a chain per model, its seeds one after another).

    python benchmarks/cluster.py                      # a few minutes on 2 cores
    python benchmarks/cluster.py --profile quick --models A B   # runs of minutes
"""

from __future__ import annotations

import argparse
import heapq
import json
import re
import tempfile
import time
from pathlib import Path

from convladder.results.layout import RunLayout, results_archive


def timed_runs(profile: str, models: list[str], address: str | None, data_dir: str | None) -> dict:
    from convladder.cluster import execute_on_cluster
    from convladder.pipeline import plan
    from convladder.workers import execute_side_by_side

    measured = {}
    with tempfile.TemporaryDirectory(prefix="convladder-bench-") as scratch:
        for path in ("local", "cluster"):
            layout = RunLayout(Path(scratch) / path)
            steps = [s for s in plan(profile, layout, data_dir, models=models, per_seed=True)  # as run_pipeline plans
                     if s.notebook == "10_train"]
            lines = []
            start = time.perf_counter()
            if path == "local":
                seconds = execute_side_by_side(steps, layout, workers=2, html=False)
            else:
                seconds = execute_on_cluster(steps, layout, address, data_dir, html=False,
                                             say=lambda line: lines.append((time.perf_counter() - start, line)))
            measured[path] = {"wall": time.perf_counter() - start, "steps": seconds, "lines": lines, "runs": len(steps)}
    return measured


def local_cluster():
    """Two Ray nodes of one CPU each on 127.0.0.1 (as tests/test_cluster.py starts them)."""
    import os

    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.1",
                                                            "include_dashboard": False})
    cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    return cluster


def study_jobs() -> tuple[list[float], list[float]]:
    """The study's archived runs in seconds: (a chain per model, as the cluster path scheduled them before; one job
    per seed, GAP+'s seed k after GAP's seed k, as it schedules them now)."""
    runs = {}
    for path in sorted(results_archive("study").glob("*/seed*/results.json")):
        r = json.loads(path.read_text())
        runs[(path.parts[-3], int(path.parent.name[4:]))] = r["train_seconds"] + (r.get("evaluation_seconds") or 0)
    for (name, seed), seconds in list(runs.items()):
        if name == "GAP+":  # its train_seconds count GAP's epochs too, which its checkpoint continues
            runs[(name, seed)] = seconds - runs[("GAP", seed)]
    per_seed: dict[tuple[str, int], float] = {}
    for (name, seed), seconds in runs.items():
        job = ("GAP", seed) if name == "GAP+" else (name, seed)
        per_seed[job] = per_seed.get(job, 0.0) + seconds
    chains: dict[str, float] = {}
    for (name, _), seconds in runs.items():
        chains["GAP" if name == "GAP+" else name] = chains.get("GAP" if name == "GAP+" else name, 0.0) + seconds
    return list(chains.values()), list(per_seed.values())


def makespan(jobs: list[float], slots: int) -> float:
    """Longest job first, each to the slot free soonest (what Ray does with the longest chains submitted first)."""
    free = [0.0] * slots
    for job in sorted(jobs, reverse=True):
        heapq.heappush(free, heapq.heappop(free) + job)
    return max(free)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--models", nargs="+", default=["A", "B", "C"])
    parser.add_argument("--cluster", help="a running cluster's address (default: start two nodes here)")
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    cluster = None if args.cluster else local_cluster()
    try:
        measured = timed_runs(args.profile, args.models, args.cluster or cluster.address, args.data_dir)
    finally:
        if cluster is not None:
            cluster.shutdown()
    local, remote = measured["local"], measured["cluster"]
    first_start = next(t for t, line in remote["lines"] if line.startswith("started: "))
    back = [(float(m.group(2)), float(m.group(1))) for _, line in remote["lines"]
            if (m := re.search(r"\(\d+ files, ([\d.]+) MB from .*\) in ([\d.]+) s", line))]
    runs = local["runs"]
    print(f"{runs} runs of the {args.profile} profile ({', '.join(args.models)}), 2 at a time both ways")
    print(f"  local --workers 2: wall {local['wall']:.1f} s; notebooks {sum(local['steps'].values()):.1f} s")
    print(f"  cluster (2 nodes x 1 CPU): wall {remote['wall']:.1f} s; notebooks {sum(remote['steps'].values()):.1f} s")
    print(f"  start-up: joining the cluster to the first run started: {first_start:.1f} s (once per command)")
    print(f"  write-back: {sum(s for s, _ in back):.2f} s for {sum(mb for _, mb in back):.1f} MB over {len(back)} chains")
    overhead = (remote["wall"] - local["wall"]) / (runs / 2)
    print(f"  extra wall time per run on the cluster: {overhead:.1f} s (the projection counts {max(overhead, 0):.1f} s)")
    overhead = max(overhead, 0.0)
    chains, per_seed = study_jobs()
    print(f"study profile: {len(list(results_archive('study').glob('*/seed*/results.json')))} archived runs, "
          f"{sum(per_seed) / 3600:.1f} h of one-thread training and evaluation")
    for nodes in (1, 4, 16):
        print(f"  {nodes:2d} node(s) of 2 cores: {makespan([c + overhead for c in chains], 2 * nodes) / 3600:.1f} h with "
              f"a chain per model (before), {makespan([s + overhead for s in per_seed], 2 * nodes) / 3600:.1f} h "
              f"with a task per seed (as built)")


if __name__ == "__main__":
    main()
