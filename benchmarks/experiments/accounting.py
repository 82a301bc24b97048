"""What a run cost in memory, for its ``result.json`` (issue 14's per-run accounting) and the speed
benchmarks: the process's peak resident set (CPU) and, on a GPU, torch's peak allocation."""

from __future__ import annotations

from pathlib import Path

import torch


def peak_rss_bytes() -> int | None:
    """This process's peak resident set (``VmHWM``), or None off Linux. Not ``ru_maxrss``: Linux
    carries the parent's peak into it across fork and exec."""
    status = Path("/proc/self/status")
    for line in status.read_text().splitlines() if status.is_file() else []:
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


def peak_memory() -> dict[str, float]:
    """The process's peak memory so far, in MiB: resident set (CPU; includes loading the model) and,
    on a GPU, torch's peak allocation."""
    rss = peak_rss_bytes()
    if rss is None:  # not Linux: ru_maxrss, in KiB
        import resource

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    peak = {"peak_rss_mb": round(rss / 2**20, 1)}
    if torch.cuda.is_available():
        peak["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return peak
