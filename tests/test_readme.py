"""README.md runs as written: every bash and Python block, in order, in one fresh directory.

A block that cannot run offline on a CPU (the test command itself, installs, your own photos,
ImageNet weights, TensorRT) carries a `<!-- not run by tests/test_readme.py: REASON -->` line right
above its fence; every other block runs. Two liberties, both stated here: training epochs are cut
to keep the suite short (`--epochs N` -> 2, `epochs=N` -> 1), and `digit.png`, the user's own
image the Python block predicts on, is written first (a scikit-learn digit).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
_BLOCK = re.compile(
    r"(?:<!-- not run by tests/test_readme\.py: (?P<skip>[^>]+?) -->\n)?"
    r"^```(?P<lang>[a-z]*)\n(?P<body>.*?)^```",
    re.S | re.M,
)


def readme_blocks() -> list[tuple[str, str, str | None]]:
    """(language, code, reason it is not run or None) for every fenced block, in order."""
    text = README.read_text(encoding="utf-8")
    return [(m["lang"], m["body"], m["skip"]) for m in _BLOCK.finditer(text)]


def _shorter(code: str) -> str:
    code = re.sub(r"--epochs \d+", "--epochs 2", code)
    return re.sub(r"\bepochs=\d+", "epochs=1", code)


def _write_digit(path: Path) -> None:
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    pixels = load_digits().images[7] * (255.0 / 16.0)
    Image.fromarray(pixels.astype(np.uint8)).resize((28, 28)).save(path)


def test_every_block_is_run_or_says_why_not():
    blocks = readme_blocks()
    runnable = [b for b in blocks if b[0] in ("bash", "python") and b[2] is None]
    assert len(runnable) >= 4
    for lang, _code, reason in blocks:
        assert lang in ("bash", "python", "text"), f"a ```{lang} block: say what it is"
        if reason is not None:
            assert len(reason.strip()) > 10, "say why the block is not run"


@pytest.mark.slow
def test_readme_blocks_run_as_written_in_order(tmp_path):
    _write_digit(tmp_path / "digit.png")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for index, (lang, code, reason) in enumerate(readme_blocks()):
        if reason is not None or lang not in ("bash", "python"):
            continue
        command = (
            ["bash", "-euo", "pipefail", "-c", _shorter(code)]
            if lang == "bash"
            else [sys.executable, "-c", _shorter(code)]
        )
        done = subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
        )
        assert done.returncode == 0, (
            f"README block {index} ({lang}) failed:\n{code}\n--- stderr ---\n{done.stderr[-3000:]}"
        )
