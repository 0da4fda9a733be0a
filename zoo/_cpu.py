"""What this CPU's int8 kernels need, without Keras: shared by `convert.lowering` (post-training
int8) and `zoo.quantization` (quantization-aware training), so both follow one rule.

Example:
    >>> needs_reduced_range()  # an AVX2 x86 CPU without VNNI
    True
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

_VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
# The int8 weight width for the CPU the file will RUN on, when that is not the one building it
# (a VNNI build machine, an AVX2 server): "7" or "8". Tests pin it to make a case CPU-independent.
WEIGHT_BITS_ENV = "KERAZOO_INT8_WEIGHT_BITS"


def needs_reduced_range() -> bool:
    """Whether ONNX Runtime's u8 x s8 kernels can saturate on this CPU: x86 without VNNI.

    Without VNNI the int8 dot product goes through `vpmaddubsw`, whose 16-bit intermediate sums
    overflow for full-range 8-bit weights; 7-bit weights (`reduce_range`) avoid it. Measured on
    an AVX2 EPYC: a digits cnn kept 96.2% -> 93.7% without, 95.7% with (OpenVINO ran both files
    at 96.2% / 95.7%: its kernels do not saturate). `KERAZOO_INT8_WEIGHT_BITS=7|8` decides
    instead, for files built on one CPU to run on another.
    """
    bits = os.environ.get(WEIGHT_BITS_ENV, "").strip()
    if bits:
        if bits not in ("7", "8"):
            raise ValueError(
                f"{WEIGHT_BITS_ENV} should be 7 (x86 CPUs without VNNI) or 8. Received: {bits!r}"
            )
        return bits == "7"
    if platform.machine().lower() not in ("x86_64", "amd64", "i686", "x86"):
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: assume the worst, 7 bits cost little
        return True
    return not any(flag in flags for flag in _VNNI_FLAGS)
