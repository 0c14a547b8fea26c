"""Training runs on a Ray cluster: `convladder all --cluster auto` (the cluster in RAY_ADDRESS, Ray's own convention)
or `--cluster <head>:6379` / `ray://<head>:10001`. Imported only then: the local path never imports Ray.

Each training chain (workers.training_chains: a seed of GAP and the same seed of GAP+ stay one chain; every other
seed is a chain of its own, pipeline.plan's per_seed) is one Ray task asking for the CPUs it
trains with (RUN_THREADS; a GPU too where the cluster has one: `run_resources`). No shared filesystem is assumed:

- Inputs travel as the task's arguments: the seed files the run continues (a resumable checkpoint, a stale run that
  train_run retrains beside itself, the finished source seed of a continuation trained earlier), only files that
  convladder recognises as its own. The node trains in a temporary folder of its own (a RunLayout rooted there)
  with the same notebook the local path executes, so resuming, retraining and continuing behave as they do locally.
- Data: each node reads CIFAR-10 from its own disk: the driver's data folder when the same path exists there, else
  the node's CONVLADDER_DATA (or data/cifar10, downloaded with its md5 checked when missing), and the task refuses
  files whose checksum differs from the driver's, so every run of the archive records one data set. The archive
  is the same 178 MB everywhere: reading it once per node from disk (or the official mirror) costs less than
  pushing it through the object store for every run, and it keeps train_run reading files exactly as it does locally.
- Outputs come back as the task's return value: the seed folders' files, the executed notebook and its log, as
  bytes, which the driver writes atomically into its run layout (cluster_files.write_back: no write through a link,
  a file convladder does not recognise is moved aside, not replaced), holding each seed's run lock meanwhile.
- Faults: a thread on the node ships each checkpoint the training writes (after every epoch) to a small actor on
  the driver's node (Tracker), which keeps the latest per seed; when a node or worker is lost, Ray retries the task
  (max_retries, Ray's own retry) and the retry starts from those checkpoints: a lost node costs the epochs since its
  last checkpoint. A failing notebook (a bad config, an error in the code) is the task's answer, not an exception,
  and other exceptions are not retried either (retry_exceptions=False): a user error is reported once, in one line.
- Progress: the driver prints each run's started/done lines and one line per epoch (from the shipped checkpoints).
  Ctrl-C (or SIGTERM) cancels every task (ray.cancel(force=True), which ends the worker and with it the notebook's
  kernel), keeps the shipped checkpoints where the run folder can continue them, and raises KeyboardInterrupt.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from contextlib import ExitStack

from convladder.cluster_files import PROTOCOL, ClusterError, chain_folders, keep_checkpoints, node_main, write_back
from convladder.pipeline import Step, StepFailed, _html_name, _minutes, export_html
from convladder.workers import training_chains
from convladder.results.layout import RunLayout
from convladder.tools.files import first_line
from convladder.tools.signals import restore, signals_held, stop_signals_raise

# One thread a run: a small model at a small batch gains little from a second thread (pipeline's docstring), so a
# node of n cores trains n runs at once, as `--workers n` does on one machine; Ray schedules by the CPUs asked for.
RUN_THREADS = 1
MAX_RETRIES = 3  # a node or worker lost this many times over gives up the chain (its shipped epochs are kept)
POLL_SECONDS = 0.5
CANCEL_WAIT_SECONDS = 30


def run_resources(threads: int, cluster: dict) -> dict:
    """What one training task asks Ray for: `threads` CPUs, and one GPU when the cluster has any (the notebook's
    device="auto" then trains on it; without num_gpus Ray hides the GPUs from the task, which trains on the CPU).
    The hook for a cluster that mixes GPU and CPU nodes: asking for a GPU keeps the runs on the GPU nodes."""
    return {"num_cpus": threads, "num_gpus": 1 if cluster.get("GPU", 0) >= 1 else 0}


def resolve(address: str) -> str:
    """The address of the cluster to join ("auto": RAY_ADDRESS), checked as far as can be before any work: Ray
    installed, an address given, something listening there; ClusterError, in one line, saying what to do."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise ClusterError("--cluster needs Ray, which is not installed here: pip install -e '.[cluster]' "
                           "(requirements/cluster.txt)") from None
    if address == "auto":
        address = os.environ.get("RAY_ADDRESS", "")
        if not address:
            raise ClusterError("--cluster auto joins the cluster named in RAY_ADDRESS, which is not set: export "
                               "RAY_ADDRESS=<head>:6379 (what `ray start --head` printed) or pass --cluster <head>:6379")
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"--cluster {address}: not a Ray address; give <head>:6379, ray://<head>:10001 or auto "
                           f"(RAY_ADDRESS)")
    try:  # Ray itself would retry an unreachable address for minutes
        socket.create_connection((host.strip("[]"), int(port)), timeout=10).close()
    except OSError as err:
        raise ClusterError(f"cannot reach the Ray cluster at {address} ({err.strerror or err}): start its head "
                           f"(ray start --head) or check the address and that this machine may connect to it") from None
    return address


def connect(address: str) -> str:
    """Join the Ray cluster at `address` (resolve) as a driver; returns the address joined. We start and open
    nothing ourselves: the cluster and its authentication (Ray's token auth, where the cluster enables it) are the
    cluster's, and this process passes no setting that would weaken them."""
    import ray

    address = resolve(address)
    # ray.init installs its own SIGTERM (and SIGINT) handlers in the driver and never takes them back: this
    # process's own (SIGTERM ends the command as Ctrl-C does, cancelling every task) must stay
    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        ray.init(address=address, log_to_driver=False, namespace="convladder")
    except Exception as err:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ValueError ...
        raise ClusterError(f"cannot join the Ray cluster at {address} ({type(err).__name__}: {first_line(err)}); "
                           f"check the address (`ray status` on the head) and the Ray versions") from None
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return address


class Tracker:
    """Lives on the driver's node: the latest checkpoint each task shipped (by task key and file, the one with the
    most epochs kept) and the progress lines for the driver to print."""

    def __init__(self):
        self.checkpoints: dict[str, dict[str, tuple[int, bytes]]] = {}
        self.lines: list[str] = []

    def keep(self, key: str, relative: str, epochs: int, content: bytes, line: str) -> None:
        kept = self.checkpoints.setdefault(key, {})
        if relative not in kept or epochs >= kept[relative][0]:  # a slow, older attempt never wins over a newer one
            kept[relative] = (epochs, content)
        self.lines.append(line)

    def latest(self, key: str) -> dict[str, tuple[int, bytes]]:
        return self.checkpoints.get(key, {})

    def say(self, line: str) -> None:
        self.lines.append(line)

    def drain(self) -> list[str]:
        lines, self.lines = self.lines, []
        return lines


def _node_step(step: Step) -> dict:
    """What a node needs of a step: its label and parameters, without the driver's paths (the node sets its own)."""
    parameters = {k: v for k, v in step.parameters.items() if k not in ("run_dir", "data_dir")}
    return {"label": step.label, "parameters": parameters, "notebook": step.output.name}


def execute_on_cluster(steps: list[Step], layout: RunLayout, address: str, data_dir: str | None, html: bool = True,
                       say=print) -> dict[str, float]:
    """Run the training steps on the Ray cluster at `address`, every chain a task; returns each step's seconds, as
    workers.execute_side_by_side does, and like it raises the failures together at the end (StepFailed) and
    Ctrl-C / SIGTERM as KeyboardInterrupt once every task is cancelled. `say` prints a progress line."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from convladder.core.data import load_cifar10
    from convladder.core.runs import run_lock
    from convladder.core.versions import CODE_VERSIONS

    data = load_cifar10(data_dir)
    chains = training_chains(steps)
    stack, handlers, pending, tracker = ExitStack(), None, {}, None
    try:
        address = connect(address)
        resources = run_resources(RUN_THREADS, ray.cluster_resources())
        say(f"{len(steps)} training steps in {len(chains)} chains on the Ray cluster at {address} "
            f"({ray.cluster_resources().get('CPU', 0):.0f} CPUs), each with {resources}")
        here = ray.get_runtime_context().get_node_id()
        tracker = ray.remote(num_cpus=0)(Tracker).options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=True)).remote()
        stack.callback(ray.kill, tracker)
        task = ray.remote(node_main).options(max_retries=MAX_RETRIES, retry_exceptions=False, **resources)
        job = ray.get_runtime_context().get_job_id()
        wanted = {"checksum": data.checksum, "data_dir": str(data.root), "code_versions": dict(CODE_VERSIONS),
                  "protocol": PROTOCOL}
        for number, chain in enumerate(chains):
            for step in chain:  # the driver's seed folders stay locked, as a local training run locks them
                for seed in step.parameters["seeds"]:
                    stack.enter_context(run_lock(layout.seed(step.parameters["name"], seed)))
            key = f"{job}-{number}"
            ref = task.remote([_node_step(s) for s in chain], shipped_files(chain, layout), wanted, RUN_THREADS,
                              tracker, key)
            pending[ref] = (key, chain)
        handlers = stop_signals_raise()
        seconds, failed = _collect(pending, tracker, layout, html, say, data.checksum)
    except KeyboardInterrupt:
        with signals_held():  # deaf to a second Ctrl-C, which would otherwise leave tasks training
            for ref in pending:
                ray.cancel(ref, force=True)
            ray.wait(list(pending), num_returns=len(pending), timeout=CANCEL_WAIT_SECONDS)
            _keep_shipped(pending, tracker, layout, data.checksum, say)
        raise
    finally:
        restore(handlers)
        stack.close()
        ray.shutdown()
    if failed:
        raise StepFailed(" | ".join(failed))
    return seconds


def _collect(pending: dict, tracker, layout: RunLayout, html: bool, say, checksum: str) -> tuple[dict[str, float], list[str]]:
    """Wait for the tasks, printing their progress; write back each chain's files as it ends. Each finished task is
    removed from `pending`, so that what is left there is what a Ctrl-C must cancel."""
    import ray

    seconds, failed = {}, []
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_SECONDS)
        for line in ray.get(tracker.drain.remote()):
            say(line)
        for ref in done:
            key, chain = pending[ref]
            labels = ", ".join(step.label for step in chain)
            try:
                answer = ray.get(ref)
            except ray.exceptions.RayTaskError as err:  # an exception in our task: not retried, reported once
                cause = err.cause if getattr(err, "cause", None) is not None else err
                failed.append(f"{labels}: {first_line(cause)}")
            except ray.exceptions.RayError as err:  # the worker or node lost more often than MAX_RETRIES
                failed.append(f"{labels}: the cluster lost its task {MAX_RETRIES + 1} times ({type(err).__name__}); "
                              f"its shipped epochs are kept, and running the same command again continues")
                _keep_shipped({ref: (key, chain)}, tracker, layout, checksum, say)
            else:
                start = time.perf_counter()
                try:
                    written = write_back(answer["files"], layout, chain_folders(layout, [s.parameters for s in chain]))
                except (OSError, ValueError) as err:  # a link in the way, a name leaving the runs: this chain only
                    failed.append(f"{labels}: {first_line(err)}")
                    del pending[ref]  # done with: never waited for again
                    continue
                say(f"written back: {labels} ({len(written)} files, {answer['bytes'] / 2**20:.1f} MB from "
                    f"{answer['node']}) in {time.perf_counter() - start:.2f} s")
                for step in chain:
                    if html and step.output.exists():
                        export_html(step.output, layout.html_dir / _html_name(step, layout))
                seconds.update(answer["seconds"])
                if answer["failed"]:
                    failed.append(answer["failed"].replace(answer["root"], str(layout.root)))
                else:
                    say(f"done: {labels} in {_minutes(sum(answer['seconds'].values()))}")
            del pending[ref]
    return seconds, failed


def _keep_shipped(pending: dict, tracker, layout: RunLayout, checksum: str, say) -> None:
    """After a Ctrl-C or a chain the cluster gave up: the latest shipped checkpoints go into the run folder where it
    can continue them (keep_checkpoints), so that running the same command again goes on from there."""
    import ray

    if tracker is None:
        return
    try:
        for key, chain in pending.values():
            kept = keep_checkpoints(ray.get(tracker.latest.remote(key), timeout=30), chain, layout, checksum)
            if kept:
                say(f"kept the shipped checkpoints of {', '.join(kept)}")
    except ray.exceptions.RayError as err:  # the tracker's node itself is gone
        say(f"note: the shipped checkpoints could not be fetched ({type(err).__name__})")


def shipped_files(chain: list[Step], layout: RunLayout) -> dict[str, bytes]:
    """The driver's files a chain starts from, by path under the run layout: the seed files (checkpoint, results)
    of each seed it trains, and of the seeds a continuation starts from when they are not trained in the chain;
    only regular files convladder recognises (a link or a foreign file stays where it is, unread)."""
    from convladder.core.runs import SEED_FILES, foreign_files

    names = {step.parameters["name"] for step in chain}
    folders = []
    for step in chain:
        seeds, source = step.parameters["seeds"], step.parameters.get("resume_from")
        folders += [layout.seed(step.parameters["name"], seed) for seed in seeds]
        if source and source not in names:
            folders += [layout.seed(source, seed) for seed in seeds]
    files = {}
    for folder in folders:
        foreign = foreign_files(folder)
        for name in SEED_FILES:
            path = folder / name
            if path.is_file() and not path.is_symlink() and path not in foreign:
                files[path.relative_to(layout.root).as_posix()] = path.read_bytes()
    return files

