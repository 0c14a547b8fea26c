"""What this machine can compute: the CPU's clock and peak arithmetic rates, and what a model's training
costs in floating-point operations, so that a measured speed can be read as a fraction of the peak.

The peaks are per core and cycle, times cores and clock (the clock /proc/cpuinfo reports):
- fp32: 32 FLOP, two 256-bit FMA pipes (2 x 8 lanes x 2 FLOP). A CPU with two full 512-bit FMA units
  doubles this; we keep the lower figure for both CPU kinds, so fractions of it may exceed 1 there.
- bf16: 64 FLOP with AVX512-BF16 dot products (twice fp32), 1024 with AMX-BF16 tiles (one 16 x 32 by
  32 x 16 tile product of 16,384 FLOP every 16 cycles); without either, the fp32 rate.

The CPU's name, flags and clock come from /proc/cpuinfo, read in one place (`_cpuinfo_values`), not from
py-cpuinfo: its get_cpu_info() took 1.2 s a call here (it starts a subprocess; AMD EPYC Zen 4, 2026-12-03)
against about a millisecond, every run records the CPU, and it reports one clock where we take the
highest of the cores'.
"""

from __future__ import annotations

import copy
import os
import platform
import re
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

FLOP_PER_CYCLE_FP32 = 32
FLOP_PER_CYCLE_BF16 = {"amx_bf16": 1024, "avx512_bf16": 64}  # the first flag the CPU has decides
BF16_UNIT_NAMES = {"amx_bf16": "AMX-BF16", "avx512_bf16": "AVX512-BF16"}  # for tables and the report


def bf16_unit_name(unit: str | None) -> str | None:
    """The bfloat16 unit as tables and the report name it ("AVX512-BF16"); None stays None."""
    return BF16_UNIT_NAMES.get(unit, unit) if unit else None


def plain_cpu_name(name: str) -> str:
    """A CPU's recorded model name as the report prints it: without trademark marks and a closing "Processor" or "CPU"
    ("Intel(R) Xeon(R) Processor" -> "Intel Xeon")."""
    name = re.sub(r"\((R|TM)\)", "", name)
    return re.sub(r"\s+(Processor|CPU)$", "", " ".join(name.split())) or name


def cpu_names(environments) -> list[str]:
    """The CPUs these runs trained on (their results' "environment"), each once, with its bfloat16 unit
    where a run recorded it ("AMD EPYC with AVX512-BF16"): the model name alone does not tell a CPU's
    generations apart. A run recorded before the unit was is counted with the runs of its CPU's name."""
    units: dict[str, set[str]] = {}
    for environment in environments:
        known = units.setdefault(plain_cpu_name(environment["cpu"]), set())
        if environment.get("cpu_bf16_unit"):
            known.add(bf16_unit_name(environment["cpu_bf16_unit"]))
    return sorted(name + (f" with {' or '.join(sorted(known))}" if known else "") for name, known in units.items())


def _cpuinfo_values(key: str) -> list[str]:
    """The values of `key` in /proc/cpuinfo, one per core (empty where it cannot be read): the one place
    that reads it."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []
    return [line.split(":", 1)[1].strip() for line in lines if line.split(":", 1)[0].strip() == key and ":" in line]


def cpu_name() -> str:
    """The CPU's model name, as runs record it."""
    names = _cpuinfo_values("model name")
    return names[0] if names else platform.processor() or "unknown"


def cpu_flags() -> set[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo cannot be read)."""
    flags = _cpuinfo_values("flags")
    return set(flags[0].split()) if flags else set()


def cpu_clock_ghz() -> float:
    """The highest clock /proc/cpuinfo reports for a core, in GHz (nan where it cannot be read)."""
    try:
        return max(float(mhz) for mhz in _cpuinfo_values("cpu MHz")) / 1000
    except ValueError:  # none, or not a number
        return float("nan")


def bf16_unit(flags: set[str] | None = None) -> str | None:
    """The CPU feature that runs bfloat16 arithmetic fast ("amx_bf16", "avx512_bf16"), or None."""
    flags = cpu_flags() if flags is None else flags
    return next((unit for unit in FLOP_PER_CYCLE_BF16 if unit in flags), None)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container or `taskset` may narrow), else the
    machine's: what the side-by-side workers and the test workers share out as threads."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def peaks(cores: int | None = None, clock_ghz: float | None = None, flags: set[str] | None = None) -> dict:
    """The CPU's peak rates in GFLOP/s ("fp32", "bf16") with what they rest on."""
    cores = cores or os.cpu_count() or 1
    clock = cpu_clock_ghz() if clock_ghz is None else clock_ghz
    unit = bf16_unit(flags)
    per_cycle_bf16 = FLOP_PER_CYCLE_BF16[unit] if unit else FLOP_PER_CYCLE_FP32
    return {
        "cores": cores, "clock_ghz": clock, "bf16_unit": unit,
        "flop_per_cycle_fp32": FLOP_PER_CYCLE_FP32, "flop_per_cycle_bf16": per_cycle_bf16,
        "fp32": cores * clock * FLOP_PER_CYCLE_FP32, "bf16": cores * clock * per_cycle_bf16,
    }


def training_flops_per_image(model: nn.Module, side: int = 32, batch_size: int = 32) -> float:
    """FLOPs of one training image through `model`, forward and backward (torch.utils.flop_counter:
    convolutions and matrix products, which dominate), counted on a copy of it in training mode."""
    model = copy.deepcopy(model).train()
    with FlopCounterMode(display=False) as counter:
        model(torch.rand(batch_size, 3, side, side)).float().sum().backward()
    return counter.get_total_flops() / batch_size
