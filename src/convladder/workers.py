"""Training runs side by side on this machine: `convladder all --workers N` trains N chains of training steps
(training_chains: a continuation after the run it continues) at a time, each in a process of its own with its share
of the cores: a small model at a small batch gains little from a second thread, so two runs of one thread each finish
sooner than one run after another with two. Each writes its progress to a log beside its executed notebook; the
chains with the most training arithmetic start first. The Ray cluster path (convladder.cluster) schedules the same
chains on many machines."""

from __future__ import annotations

import multiprocessing
import os
import signal

from convladder.pipeline import Step, StepFailed, _minutes, execute
from convladder.results.layout import RunLayout
from convladder.tools.hardware import usable_cores
from convladder.tools.signals import STOP_SIGNALS, die_with_parent, restore, signals_held, stop_signals_raise


def training_chains(steps: list[Step]) -> list[list[Step]]:
    """The training steps in chains that run one after another: a continuation (GAP+) after the step
    that trains a seed it continues (its seed k continues its source's seed k), in a chain of its own
    when its source's seeds are already trained; the chains with the most training arithmetic (FLOPs
    per image x epochs x seeds) first."""
    from convladder.core.models import create_model
    from convladder.tools.hardware import training_flops_per_image

    chains: list[list[Step]] = []
    for step in steps:
        source, seeds = step.parameters.get("resume_from"), set(step.parameters["seeds"])
        chain = next((c for c in chains if any(s.parameters["name"] == source and seeds & set(s.parameters["seeds"])
                                               for s in c)), None)
        if chain is None:
            chains.append([step])
        else:
            chain.append(step)
    configs = {id(s): s.parameters["planned"]["config"] for s in steps}
    flops = {model: training_flops_per_image(create_model(model)) for model in {c["model"] for c in configs.values()}}

    def arithmetic(chain: list[Step]) -> float:
        return sum(flops[configs[id(s)]["model"]] * configs[id(s)]["epochs"] * len(s.parameters["seeds"]) for s in chain)

    return sorted(chains, key=arithmetic, reverse=True)


def _execute_chain(chain: list[Step], layout: RunLayout, html: bool, threads: int) -> dict[str, float]:
    """One worker's chain of training steps, each with `threads` threads and its output in a log beside its
    notebook (a child process of run_pipeline)."""
    seconds = {}
    for step in chain:
        log = step.output.with_suffix(".log")
        print(f"started: {step.label} (progress: {log})", flush=True)
        step = Step(step.notebook, step.output, {**step.parameters, "threads": threads}, step.label)
        seconds[step.label] = execute(step, layout, html, log=log)
        print(f"done: {step.label} in {_minutes(seconds[step.label])}", flush=True)
    return seconds


def _worker(connection, parent_pid: int, run_chain, chain: list[Step], layout: RunLayout, html: bool,
            threads: int) -> None:
    """One worker process: runs `chain` and sends ("done", seconds) or ("failed", message) back.
    Ctrl-C is the parent's to handle (it ends every worker), so that a worker does not print a
    traceback of its own or start its next run; SIGTERM (the parent's, or its death) ends it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # started inside signals_held
    die_with_parent(parent_pid)
    try:
        outcome = ("done", run_chain(chain, layout, html, threads))
    except StepFailed as err:
        outcome = ("failed", str(err))
    except Exception as err:  # noqa: BLE001 - any other failure is reported by the parent in one line
        outcome = ("failed", f"{chain[0].label}: {type(err).__name__}: {err}")
    connection.send(outcome)
    connection.close()


def execute_side_by_side(steps: list[Step], layout: RunLayout, workers: int, html: bool = True) -> dict[str, float]:
    """Run training steps in `workers` processes at a time, each with its share of the cores; returns each
    step's seconds. Each chain (training_chains) runs in a process of its own, started here and joined here
    (no pool thread in between, so nothing is left running once this returns or raises). A failed chain,
    or a worker killed from outside, does not stop the others; the failures are raised together at the end
    (finished runs are kept, and running the same command again continues). Ctrl-C and SIGTERM end every
    worker (and with it its notebook's kernel) and are raised here as KeyboardInterrupt; a worker whose
    parent dies, even by SIGKILL, ends too (die_with_parent)."""
    from multiprocessing.connection import wait

    chains = training_chains(steps)
    threads = max(1, usable_cores() // workers)
    print(f"{len(steps)} training steps in {len(chains)} chains, {workers} at a time with {threads} "
          f"thread{'s' if threads > 1 else ''} each", flush=True)
    seconds: dict[str, float] = {}
    failed, unfinished = [], []
    # spawned, not forked: this process has started PyTorch's thread pool (the FLOP counts above)
    context = multiprocessing.get_context("spawn")
    waiting = list(chains)
    running: dict = {}  # the receiving end of each worker's pipe -> (process, chain)
    # multiprocessing starts its resource tracker with the first process, unblocking these signals as it does:
    # started here, outside signals_held, so that no start can undo the block
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    handlers = stop_signals_raise()
    try:
        while waiting or running:
            while waiting and len(running) < workers:
                chain = waiting.pop(0)
                receive, send = context.Pipe(duplex=False)
                process = context.Process(target=_worker, args=(send, os.getpid(), _execute_chain, chain, layout,
                                                                html, threads), daemon=True)
                with signals_held():  # a worker is started and recorded, or neither
                    process.start()
                    running[receive] = (process, chain)
                send.close()
            for receive in wait(list(running)):
                with signals_held():  # a worker is joined and forgotten, or neither
                    process, chain = running[receive]
                    try:
                        kind, value = receive.recv()
                    except (EOFError, OSError):  # the worker died before it could answer (killed, out of memory?)
                        kind, value = "died", None
                    process.join()
                    receive.close()
                    del running[receive]
                if kind == "done":
                    seconds.update(value)
                elif kind == "failed":
                    failed.append(value)
                else:
                    unfinished.extend(step.label for step in chain)
    finally:
        # End the workers first of all, deaf to a second Ctrl-C or SIGTERM, which would otherwise leave them
        # training; after a normal end nothing is running and this ends nothing.
        with signals_held():
            for process, _ in running.values():
                process.terminate()
            for receive, (process, _) in running.items():
                process.join()
                receive.close()
            restore(handlers)
    if unfinished:
        failed.append(f"a training worker process died (killed, or out of memory?) before it finished "
                      f"{', '.join(unfinished)}; its finished epochs and runs are kept, and running the same "
                      f"command again continues")
    if failed:
        raise StepFailed(" | ".join(failed))
    return seconds
