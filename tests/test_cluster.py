"""Training on a Ray cluster (convladder.cluster): a real two-node cluster on this machine, on 127.0.0.1 only, one CPU
a node, started once for this module and shut down at its end (also when a test fails)."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from pathlib import Path

import psutil
import pytest
import ray
import torch

from convladder.cli import main
from convladder.pipeline import Step, StepFailed, plan
from convladder.workers import _execute_chain, execute_side_by_side
from convladder.results.layout import RunLayout, run_name_of

LOOPBACK = "127.0.0.1"
# What legitimately differs between two runs of the same config: the clock and where it ran.
# (the checkpoint holds timings; beside_cores: what else ran meanwhile)
TIMINGS = ("wall_seconds", "train_seconds", "evaluation_seconds", "beside_cores", "checkpoint_sha256")


@pytest.fixture(scope="module")
def ray_cluster():
    """Two Ray nodes of one CPU each. Ray's addresses stay on the loopback interface (its switch for that is named
    for Windows and macOS, where it is the default), so nothing listens on a network address."""
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    patch = pytest.MonkeyPatch()
    patch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # the raylets and workers this starts read it
    patch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)  # this process read it at import
    # a head node started in this process installs Ray's SIGTERM handler here and leaves it: the later tests
    # (and the suite's own signal checks) get this process's handlers back
    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    cluster = None
    try:
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "node_ip_address": LOOPBACK,
                                                                "include_dashboard": False})
        cluster.add_node(num_cpus=1, node_ip_address=LOOPBACK)
        yield cluster
    finally:
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()
        patch.undo()
        for number, handler in handlers.items():
            signal.signal(number, handler)


def training_steps(layout: RunLayout, data: Path, models: list[str], **changes) -> list[Step]:
    """The smoke profile's training steps of `models` (their continuations too), the config changed by `changes`: a
    step per seed, as convladder all --cluster plans them."""
    steps = [s for s in plan("smoke", layout, str(data), models=models, per_seed=True) if s.notebook == "10_train"
             and s.parameters["name"] in {*models, "GAP+"}]
    for step in steps:
        step.parameters["planned"]["config"].update(changes)
    return steps


def results_without_timings(path: Path) -> dict:
    results = json.loads(path.read_text())
    for key in TIMINGS:
        results.pop(key)
    results["history"].pop("epoch_seconds")
    results["continued_from"] = results["continued_from"] and run_name_of(results["continued_from"])
    return results


def assert_same_checkpoint(a: Path, b: Path) -> None:
    """The same weights, optimizer, scheduler and random state bit for bit, and the same history but for its clock."""
    first, second = (torch.load(path, weights_only=True) for path in (a, b))
    assert first.keys() == second.keys()
    for one in (first, second):
        one["history"].pop("epoch_seconds")
    flat_a, spec_a = torch.utils._pytree.tree_flatten(first)
    flat_b, spec_b = torch.utils._pytree.tree_flatten(second)
    assert spec_a == spec_b
    for x, y in zip(flat_a, flat_b):
        assert torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y


def task_folders() -> list[Path]:
    """The temporary folders tasks train in on this machine's nodes (cluster_files.task_folder)."""
    import tempfile

    return [p for p in (Path(tempfile.gettempdir()) / "convladder-tasks").glob("*") if p.is_dir()]


@pytest.mark.slow
def test_a_cluster_run_writes_the_archive_a_local_run_writes(ray_cluster, full_size_cifar, tmp_path):
    from convladder.cluster import execute_on_cluster

    local, remote = RunLayout(tmp_path / "local"), RunLayout(tmp_path / "cluster")
    # GAP -> GAP+: one chain, GAP+ continuing GAP's checkpoint on the node; one thread a run, as on the cluster
    execute_side_by_side(training_steps(local, full_size_cifar, ["GAP"]), local, workers=os.cpu_count() or 1, html=False)
    lines = []
    steps = training_steps(remote, full_size_cifar, ["GAP"])
    seconds = execute_on_cluster(steps, remote, ray_cluster.address, str(full_size_cifar), say=lines.append)
    assert set(seconds) == {step.label for step in steps} == {"train GAP (1 epoch, seed 0)", "train GAP+ (2 epochs, seed 0)"}
    text = "\n".join(lines)
    assert text.count("started: ") == 2 and text.count("written back: ") == 1 and text.count("done: ") == 1, text
    assert "train GAP+ (2 epochs, seed 0), seed 0: epoch 2/2 (val_acc " in text and f"on {LOOPBACK}" in text, text
    for name in ("GAP", "GAP+"):
        assert results_without_timings(remote.results(name, 0)) == results_without_timings(local.results(name, 0))
        assert_same_checkpoint(remote.checkpoint(name, 0), local.checkpoint(name, 0))
        last = f"epoch {json.loads(remote.results(name, 0).read_text())['config']['epochs']}"
        assert last in (remote.run(name) / "train-seed0.log").read_text()  # the progress bar, in the log, as locally
        assert json.loads(remote.train_notebook(name, 0).read_text())["metadata"]["papermill"]["exception"] is None
        assert (remote.html_dir / f"10_train_{name}_seed0.html").is_file()
    assert sorted(p.name for p in remote.seed("GAP+", 0).iterdir()) == ["checkpoint.pt", "results.json"]
    assert not task_folders()  # each task removed its temporary folder


def kernels_of(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


@pytest.mark.slow
def test_a_killed_worker_is_retried_from_its_last_shipped_epoch_to_the_same_weights(ray_cluster, full_size_cifar,
                                                                                     tmp_path):
    from convladder.cluster import execute_on_cluster

    long = {"epochs": 4, "train_size": 4096}  # epochs of seconds: the kill lands mid-run
    remote, local = RunLayout(tmp_path / "cluster"), RunLayout(tmp_path / "local")
    lines, killed = [], {}

    def kill_after_the_first_shipped_epoch(line: str) -> None:
        lines.append(line)
        if not killed and re.search(r": epoch \d+/4 ", line):
            pid = int(re.search(r"worker pid (\d+)", "\n".join(lines)).group(1))
            killed["kernels"] = kernels_of(pid)
            killed["epoch"] = int(re.search(r": epoch (\d+)/4 ", line).group(1))
            os.kill(pid, signal.SIGKILL)

    execute_on_cluster(training_steps(remote, full_size_cifar, ["A"], **long), remote, ray_cluster.address,
                       str(full_size_cifar), html=False, say=kill_after_the_first_shipped_epoch)
    text = "\n".join(lines)
    assert killed and text.count("started: ") == 2, text
    resumed = int(re.search(r"resuming A/seed0/checkpoint.pt from shipped epoch (\d+)", text).group(1))
    assert 1 <= killed["epoch"] <= resumed < 4  # not from epoch 0, not after the end
    gone, alive = psutil.wait_procs(killed["kernels"], timeout=30)
    assert killed["kernels"] and not alive  # the killed worker's notebook kernel ended with it
    _execute_chain(training_steps(local, full_size_cifar, ["A"], **long), local, html=False, threads=1)
    assert_same_checkpoint(remote.checkpoint("A", 0), local.checkpoint("A", 0))
    assert results_without_timings(remote.results("A", 0)) == results_without_timings(local.results("A", 0))


@pytest.mark.slow
def test_a_failing_notebook_is_not_retried_and_is_one_line(ray_cluster, full_size_cifar, tmp_path):
    from convladder.cluster import execute_on_cluster

    layout, lines = RunLayout(tmp_path / "cluster"), []
    steps = training_steps(layout, full_size_cifar, ["A"], lr=-1.0)  # refused by TrainConfig in the notebook
    with pytest.raises(StepFailed) as raised:
        execute_on_cluster(steps, layout, ray_cluster.address, str(full_size_cifar), html=False, say=lines.append)
    message = str(raised.value)
    assert "\n" not in message and message.startswith("train A (1 epoch, seed 0) failed (ValueError: ")
    assert f"the executed notebook with the traceback is {layout.train_notebook('A', 0)}" in message
    assert "ValueError" in layout.train_notebook("A", 0).read_text()  # written back, to read here
    assert sum(line.startswith("started: ") for line in lines) == 1  # tried once
    assert not layout.results("A", 0).exists()


@pytest.mark.slow
def test_ctrl_c_cancels_every_task_and_keeps_the_shipped_epochs(ray_cluster, full_size_cifar, tmp_path):
    from convladder.cluster import execute_on_cluster

    layout, lines, pressed = RunLayout(tmp_path / "cluster"), [], {}
    steps = training_steps(layout, full_size_cifar, ["A", "B"], epochs=4, train_size=4096)

    def press_ctrl_c_after_the_first_epoch(line: str) -> None:
        lines.append(line)
        if not pressed and re.search(r": epoch \d+/4 ", line):
            pressed["workers"] = [int(pid) for pid in re.findall(r"worker pid (\d+)", "\n".join(lines))]
            pressed["kernels"] = [k for pid in pressed["workers"] for k in kernels_of(pid)]
            os.kill(os.getpid(), signal.SIGINT)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, also under `pytest &`
    start = time.perf_counter()
    try:
        with pytest.raises(KeyboardInterrupt):
            execute_on_cluster(steps, layout, ray_cluster.address, str(full_size_cifar), html=False,
                               say=press_ctrl_c_after_the_first_epoch)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert time.perf_counter() - start < 120
    assert pressed["workers"] and pressed["kernels"]
    _, alive = psutil.wait_procs([psutil.Process(p) for p in pressed["workers"] if psutil.pid_exists(p)]
                                 + pressed["kernels"], timeout=30)
    assert not alive  # nothing goes on training
    assert any(line.startswith("kept the shipped checkpoints of ") for line in lines)
    kept = [torch.load(layout.checkpoint(name, 0), weights_only=True) for name in ("A", "B")
            if layout.checkpoint(name, 0).exists()]
    assert kept and all(len(state["history"]["epoch"]) >= 1 for state in kept)  # the next call continues from there
    assert not any(layout.results(name, 0).exists() for name in ("A", "B"))
    # a force-cancelled worker cannot remove its folder: the next task on the node does, its owner being gone
    from convladder.cluster_files import sweep_leftovers

    left = task_folders()
    assert left and sorted(sweep_leftovers(left[0].parent)) == sorted(left) and not task_folders()


@pytest.mark.slow
def test_convladder_all_trains_on_the_cluster_and_builds_the_rest_here(ray_cluster, full_size_cifar, tmp_path, capfd):
    runs = tmp_path / "runs"
    assert main(["all", "--profile", "smoke", "--models", "A", "--no-html", "--run-dir", str(runs), "--data-dir",
                 str(full_size_cifar), "--cluster", ray_cluster.address]) in (0, 2)  # 2: no LaTeX here
    out = capfd.readouterr().out
    assert f"[2-3/4] training, on the Ray cluster at {ray_cluster.address}" in out, out
    for name in ("A", "A-softmax"):  # A and its study-softmax twin: two chains, one on each node
        assert f"written back: train {name} (1 epoch, seed 0) (4 files" in out and f"done: train {name} (1 epoch" in out
        assert json.loads((runs / name / "seed0" / "results.json").read_text())["history"]["epoch"] == [1]
    assert (runs / "data.json").is_file()  # the data facts, computed here


@pytest.mark.parametrize("address, says", [
    ("auto", "--cluster auto joins the cluster named in RAY_ADDRESS, which is not set"),
    (f"{LOOPBACK}:9", f"cannot reach the Ray cluster at {LOOPBACK}:9"),  # the discard port: nothing listens
    ("head-without-port", "not a Ray address; give <head>:6379"),
])
def test_a_cluster_that_cannot_be_joined_is_one_line_before_any_work(address, says, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert main(["all", "--profile", "smoke", "--cluster", address, "--run-dir", str(tmp_path / "runs"),
                 "--data-dir", str(tmp_path / "no-data")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # nothing trained or written


def test_without_ray_the_cluster_option_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    assert main(["all", "--profile", "smoke", "--cluster", "auto", "--run-dir", str(tmp_path / "runs")]) == 2
    assert "--cluster needs Ray, which is not installed here: pip install -e '.[cluster]'" in capsys.readouterr().err


def test_the_local_path_imports_no_ray():
    import subprocess

    code = "import sys, convladder.cli, convladder.pipeline; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_a_task_gets_one_gpu_only_where_the_cluster_has_one():
    from convladder.cluster import run_resources

    assert run_resources(1, {"CPU": 4.0}) == {"num_cpus": 1, "num_gpus": 0}
    assert run_resources(2, {"CPU": 4.0, "GPU": 2.0}) == {"num_cpus": 2, "num_gpus": 1}


def test_write_back_refuses_paths_leaving_the_run_folder_and_links(tmp_path):
    from convladder.cluster_files import chain_folders, write_back
    from convladder.tools.files import LinkError

    layout = RunLayout(tmp_path / "runs")
    folders = chain_folders(layout, [{"name": "A", "seeds": [0]}])
    for bad in ("../outside", "/etc/passwd", "A/../../x"):
        with pytest.raises(ValueError, match="does not stay in the run folder"):
            write_back({bad: b"x"}, layout, folders)
    (tmp_path / "elsewhere").mkdir()
    layout.root.mkdir()
    (layout.root / "A").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(LinkError):
        write_back({"A/seed0/results.json": b"{}"}, layout, folders)
    assert not any((tmp_path / "elsewhere").iterdir())
    (layout.root / "A").unlink()
    (layout.seed("A", 0)).mkdir(parents=True)
    # a node may write only its own runs' folders: not another run's, not the report; and then nothing at all
    for stray in ("B/seed0/results.json", "report/report.tex", "A/seed1/checkpoint.pt", "NOTES.md"):
        with pytest.raises(ValueError, match="outside its runs' folders"):
            write_back({"A/seed0/checkpoint.pt": b"w", stray: b"x"}, layout, folders)
    assert not any(layout.seed("A", 0).iterdir()) and sorted(p.name for p in layout.root.iterdir()) == ["A"]
    (layout.results("A", 0)).write_text("my own notes")  # not convladder's: moved aside, not replaced
    written = write_back({"A/seed0/results.json": b"{}", "A/seed0/checkpoint.pt": b"w"}, layout, folders)
    assert [p.name for p in written] == ["checkpoint.pt", "results.json"]  # the checkpoint first, the results last
    assert (layout.seed("A", 0) / "results.json.unrecognised").read_text() == "my own notes"


def test_joining_the_cluster_leaves_this_processs_signal_handlers_as_they_were(ray_cluster):
    """ray.init installs a SIGTERM handler of its own in the driver; convladder's (SIGTERM as Ctrl-C: every task
    cancelled) must survive it, and so must whatever the caller had."""
    from convladder.cluster import connect

    mine = lambda *_: None  # noqa: E731
    previous = signal.signal(signal.SIGTERM, mine)
    try:
        interrupt = signal.getsignal(signal.SIGINT)
        connect(ray_cluster.address)
        assert signal.getsignal(signal.SIGTERM) is mine and signal.getsignal(signal.SIGINT) is interrupt
    finally:
        ray.shutdown()
        signal.signal(signal.SIGTERM, previous)


def test_a_node_with_another_cluster_protocol_is_refused_in_one_line():
    """A node whose convladder exchanges other entries with the driver (here: a driver before per-seed notebooks, which
    sent no protocol) is refused before it trains, whatever its training code's versions."""
    from convladder.cluster_files import PROTOCOL, ClusterError, node_main
    from convladder.core.versions import CODE_VERSIONS

    for protocol in (None, PROTOCOL - 1):
        wanted = {"code_versions": dict(CODE_VERSIONS), **({"protocol": protocol} if protocol else {})}
        with pytest.raises(ClusterError, match=f"another cluster protocol \\({PROTOCOL}, the driver {protocol}\\): "
                                               f"install the driver's checkout on every node"):
            node_main([], {}, wanted, 1, tracker=None, key=f"protocol-test-{os.getpid()}")
