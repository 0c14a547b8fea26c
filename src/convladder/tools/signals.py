"""Signals for processes that start workers: SIGTERM raised as Ctrl-C, Ctrl-C and SIGTERM held while
a worker is started or joined, and a worker that ends with its parent (workers.execute_side_by_side)."""

from __future__ import annotations

import os
import signal
import sys
from contextlib import contextmanager


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel end this process (SIGTERM) when its parent dies, even by SIGKILL (Linux's
    parent-death signal); where that is not to be had, or the parent is already gone, end now.
    The notebook kernel this process starts watches its own parent (this process) and ends with it."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # 1: PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C: every worker is ended before the command stops."""


def raise_terminated(signum, frame):
    raise Terminated()


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def stop_signals_raise() -> dict | None:
    """SIGTERM raises as Ctrl-C does (KeyboardInterrupt) until `restore`, unless the program handles it
    already (the CLI does); the handlers it replaced, or None off the main thread (where Python sets no
    handlers)."""
    import threading

    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        return None
    return {signal.SIGTERM: signal.signal(signal.SIGTERM, raise_terminated)}


def restore(handlers: dict | None) -> None:
    for signum, handler in (handlers or {}).items():
        signal.signal(signum, handler)


@contextmanager
def signals_held():
    """Ctrl-C and SIGTERM wait (blocked, not lost) until the block is left, when the mask is what it was
    before. A process started inside inherits the block: `_worker` lifts it."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
