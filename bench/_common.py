"""Helpers shared by the fine-tuning benchmarks: statistics, tables, machine facts, JSON output.

The benchmarks compare things side by side in one process (interleaved repetitions) and report
medians with their spread, because the machines they run on are often shared: an absolute
number from one run says little, a ratio measured in the same minutes says more.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Keep TensorFlow's start-up chatter (oneDNN, CUDA probing) out of the printed tables.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, min, max and quartiles of repeated measurements."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("spread() needs at least one value. Received: []")
    if len(ordered) > 1:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1 = q3 = ordered[0]
    return {
        "median": statistics.median(ordered),
        "min": ordered[0],
        "max": ordered[-1],
        "q1": q1,
        "q3": q3,
        "n": len(ordered),
    }


def fmt_range(stats: dict[str, float], digits: int = 2) -> str:
    """'median [min-max]' for a table cell."""
    return f"{stats['median']:.{digits}f} [{stats['min']:.{digits}f}-{stats['max']:.{digits}f}]"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (pastes into docs/BENCHMARKS.md as printed)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def _cpu() -> dict[str, Any]:
    name, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for row in handle:
                if row.startswith("model name") and name in ("unknown", "x86_64", ""):
                    name = row.split(":", 1)[1].strip()
                elif row.startswith("flags") and not flags:
                    flags = set(row.split(":", 1)[1].split())
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "avx512_vnni")
    wanted += ("amx_bf16", "amx_fp16", "amx_int8", "amx_tile")
    return {
        "model": name,
        "cores": os.cpu_count(),
        "flags": sorted(f for f in wanted if f in flags),
    }


def machine() -> dict[str, Any]:
    """What the numbers were measured on (and how busy the machine was when they were)."""
    versions = {"python": platform.python_version()}
    for module in ("tensorflow", "keras", "numpy"):
        if module in sys.modules:
            versions[module] = getattr(sys.modules[module], "__version__", "?")
    return {
        "cpu": _cpu(),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "versions": versions,
    }


def write_json(name: str, payload: dict[str, Any]) -> Path:
    """Write bench/results/<name>.json with the command line and machine facts added."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    record = {
        "benchmark": name,
        "command": "python " + " ".join(sys.argv),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        **payload,
    }
    path.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def write_image_folder(
    root: str | os.PathLike[str],
    count: int,
    size: int = 32,
    classes: int = 10,
    mode: str = "RGB",
    seed: int = 0,
) -> Path:
    """Write `count` PNG images (size x size, `mode` "RGB" or "L") into `classes` class folders.

    Each image is a class-dependent gradient plus noise: cheap to make, not trivially
    compressible, and learnable, so a short run behaves like a real one.
    """
    import numpy as np
    from PIL import Image

    root = Path(root)
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)
    channels = 3 if mode == "RGB" else 1
    for label in range(classes):
        (root / f"class_{label:02d}").mkdir(parents=True, exist_ok=True)
    for index in range(count):
        label = index % classes
        angle = np.pi * label / classes
        base = 255.0 * (np.cos(angle) * ramp[None, :] + np.sin(angle) * ramp[:, None]) / 1.5
        noise = rng.normal(0.0, 30.0, size=(size, size, channels))
        pixels = np.clip(base[..., None] + noise, 0, 255).astype(np.uint8)
        image = Image.fromarray(pixels if channels == 3 else pixels[..., 0], mode=None)
        image.save(root / f"class_{label:02d}" / f"{index:06d}.png")
    return root
