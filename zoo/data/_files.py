"""Image files as a Source: the readability check, the one skipped-files warning, the fingerprint.

Both ways of naming image files, a folder (`_folder`) and a CSV manifest (`_manifest`), end
here, so they skip, count and report bad files the same way.

Decisions:
- Files are kept by extension (IMAGE_EXTENSIONS, case-insensitive): the formats `decode_image`
  (Pillow) reads. Other files are left out and counted.
- Bad files are found up-front and skipped with one warning line (counts by reason, up to 3
  names), so one bad file among thousands neither stops a run nor prints a line per file. JPEGs
  are decoded at 1/8 scale (Pillow `draft`: every byte read, little work); PNG uses `verify`
  (every chunk's CRC); the other formats are decoded in full, because Pillow's `verify` checks
  nothing for them and a truncated TIFF or WebP would otherwise fail later, file by file, inside
  training. A mode `decode_image` cannot map to 0-255 (32-bit integers) is "unsupported".
"""

from __future__ import annotations

import hashlib
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from zoo.data._image import check_mode
from zoo.data._source import Source, Split

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
# Reasons a file is left out, in the order the warning lists them.
CORRUPT = "corrupt or truncated image(s)"
UNSUPPORTED = "image(s) of an unsupported pixel format"
NOT_IMAGE = "non-image file(s)"
OUTSIDE = "file(s) or folder(s) outside class folders"
_REASONS = (CORRUPT, UNSUPPORTED, NOT_IMAGE, OUTSIDE)
_SHOWN = 3  # names in the warning


def is_image_name(name: str) -> bool:
    """Whether a file name has one of IMAGE_EXTENSIONS (case-insensitive)."""
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def image_problem(path: str) -> str | None:
    """None for a readable image, else the reason it is skipped (CORRUPT or UNSUPPORTED).

    Example:
        >>> image_problem("photos/cat/1.png") is None
        True
    """
    from PIL import Image  # imported late: only image files need it

    try:
        with Image.open(path) as image:
            check_mode(image.mode, path)
            if image.format == "JPEG":
                image.draft("RGB", (1, 1))  # smallest DCT scale: every byte read, little work
                image.load()
            elif image.format == "PNG":
                image.verify()
            else:
                image.load()
        return None
    except ValueError as error:  # UnsupportedImageError, or Pillow's own for odd headers
        return UNSUPPORTED if type(error).__name__ == "UnsupportedImageError" else CORRUPT
    except Exception:  # Pillow raises many types for bad files (OSError, SyntaxError, ...)
        return CORRUPT


def warn_skipped(origin: str, skipped: dict[str, list[str]], total: int) -> None:
    """One warning line for everything left out: counts by reason, up to 3 names.

    Example:
        >>> warn_skipped("photos", {"corrupt or truncated": ["photos/a/1.png"]}, 10)
        UserWarning: photos: skipping 1 of 10 files: 1 corrupt or truncated image(s); e.g. ...
    """
    counts = [(reason, len(skipped.get(reason, ()))) for reason in _REASONS]
    count = sum(n for _, n in counts)
    if not count:
        return
    names = [name for reason in _REASONS for name in skipped.get(reason, ())][:_SHOWN]
    more = ", ..." if count > len(names) else ""
    warnings.warn(
        f"{origin}: skipping {count} of {total} files: "
        f"{', '.join(f'{n} {reason}' for reason, n in counts if n)}; "
        f"e.g. {', '.join(names)}{more} (images are {', '.join(IMAGE_EXTENSIONS)})",
        stacklevel=6,
    )


def files_source(
    origin: str,
    description: str,
    class_names: list[str],
    listed: dict[str, tuple[list[str], list[int]]],
    ignored: dict[str, list[str]],
    places: list[str],
) -> Source:
    """Check every listed file once and build the Source ("train" is required in `listed`).

    `listed` maps split -> (paths, labels); `ignored` holds what was left out before (by reason);
    `places` says where each class comes from, for the error when a class has no readable
    training image (e.g. "class folder 'photos/cat'").
    """
    everything = [path for paths, _ in listed.values() for path in paths]
    # Checking is I/O-bound and Pillow releases the GIL while decoding: threads are enough.
    with ThreadPoolExecutor(max_workers=8) as pool:
        problems = dict(zip(everything, pool.map(image_problem, everything), strict=True))
    skipped = {reason: list(names) for reason, names in ignored.items()}
    for path, problem in problems.items():
        if problem:
            skipped.setdefault(problem, []).append(path)
    total = len(everything) + sum(len(skipped.get(r, ())) for r in (NOT_IMAGE, OUTSIDE))
    warn_skipped(origin, skipped, total)
    splits = {}
    for split, (paths, labels) in listed.items():
        keep = [index for index, path in enumerate(paths) if not problems[path]]
        items = np.array([paths[i] for i in keep], dtype=object)
        if keep or split == "train":  # an empty val/ or test/ is no split: val is carved
            splits[split] = Split(items, np.array([labels[i] for i in keep], dtype=np.int64))
    _check_every_class(origin, class_names, places, splits["train"])
    return Source(
        kind="files",
        train=splits["train"],
        val=splits.get("val"),
        test=splits.get("test"),
        class_names=list(class_names),
        item_shape=(None, None, 3),
        description=description,
        skipped={
            "corrupt": len(skipped.get(CORRUPT, ())),
            "corrupt_files": list(skipped.get(CORRUPT, ())),
            "unsupported": len(skipped.get(UNSUPPORTED, ())),
            "non_image": len(skipped.get(NOT_IMAGE, ())) + len(skipped.get(OUTSIDE, ())),
        },
        fingerprint=fingerprint(origin, everything),
    )


def fingerprint(origin: str, paths: list[str]) -> str:
    """Identifies the files' content (path, size, mtime) for cache file names."""
    digest = hashlib.sha1(str(Path(origin).expanduser().resolve()).encode())
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _check_every_class(origin: str, names: list[str], places: list[str], train: Split) -> None:
    counts = np.bincount(train.y, minlength=len(names))
    empty = np.flatnonzero(counts == 0)
    if len(empty):
        raise ValueError(
            f"{origin}: {places[empty[0]]} has no readable images "
            f"({', '.join(IMAGE_EXTENSIONS)}); add images or remove it. "
            f"Received: {dict(zip(names, counts.tolist(), strict=True))} training images per class"
        )
