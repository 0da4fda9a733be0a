"""Scanning an image folder (one sub-folder per class) into a list of checked files.

Decisions:
- Class names are the sorted names of the root's sub-folders (hidden ones, starting with ".",
  are ignored); images may sit at any depth inside a class folder.
- Files are kept by extension (IMAGE_EXTENSIONS, case-insensitive): JPEG, PNG, BMP and GIF,
  which `decode_image` (Pillow) reads. Other files (README.txt, ...) and files directly in the root are ignored and counted;
  hidden files (.DS_Store, ...) are ignored silently.
- Corrupt or truncated images are found up-front, cheaply, and skipped with one warning and a
  count (`ResolvedData.skipped`), so one bad file among thousands does not stop a training run.
  JPEGs are decoded at 1/8 scale (PIL `draft`), which reads every byte and so finds truncation
  for a fraction of a full decode; other formats use PIL `verify` (PNG checks every chunk's CRC).
  Decoding (in `load_arrays` and in finetune's tf.data pipelines) also drops any image that
  still fails, with a warning.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from zoo.data._source import Source, Split

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


def _is_readable_image(path: str) -> bool:
    from PIL import Image  # imported late: only folders need it

    try:
        with Image.open(path) as image:
            if image.format == "JPEG":
                image.draft("RGB", (1, 1))  # smallest DCT scale: every byte read, little work
                image.load()
            else:
                image.verify()
        return True
    except Exception:  # PIL raises many types for bad files (OSError, SyntaxError, ...)
        return False


def scan_folder(root: str | Path, origin: str) -> Source:
    """List and check the images of a class-per-sub-folder directory.

    Example:
        >>> source = scan_folder("photos", "photos")   # photos/cat/1.jpg, photos/dog/2.png
        >>> source.class_names, len(source.train)
        (['cat', 'dog'], 2)
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ValueError(
            f"{origin}: no such directory; --data takes a folder with one sub-folder per class, "
            f"a .npz file or builtin:NAME. Received: {str(root)!r}"
        )
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise ValueError(
            f"{origin}: no class sub-folders; put each class's images in its own sub-folder, "
            f"e.g. {root / 'cat' / '001.jpg'}. Received: an empty folder or loose files only"
        )
    if len(class_dirs) == 1:
        raise ValueError(
            f"{origin}: only one class folder ({class_dirs[0].name!r}); classification needs at "
            f"least 2 class sub-folders. Received: {str(root)!r}"
        )
    paths: list[str] = []
    labels: list[int] = []
    # Loose files in the root belong to no class: ignored and counted like non-images.
    loose = [p for p in root.iterdir() if p.is_file() and not p.name.startswith(".")]
    non_image: dict[str, int] = {"files outside class folders": len(loose)} if loose else {}
    digest = hashlib.sha1(str(root.resolve()).encode())
    for label, class_dir in enumerate(class_dirs):
        for folder, subdirs, files in os.walk(class_dir):
            subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
            for name in sorted(files):
                extension = os.path.splitext(name)[1].lower()
                if extension in IMAGE_EXTENSIONS:
                    path = os.path.join(folder, name)
                    paths.append(path)
                    labels.append(label)
                    stat = os.stat(path)
                    digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode())
                elif not name.startswith("."):
                    non_image[extension or name] = non_image.get(extension or name, 0) + 1
    # Checking is I/O-bound and PIL releases the GIL while decoding: threads are enough.
    with ThreadPoolExecutor(max_workers=8) as pool:
        readable = list(pool.map(_is_readable_image, paths))
    corrupt = [p for p, ok in zip(paths, readable, strict=True) if not ok]
    if corrupt:
        warnings.warn(
            f"{origin}: skipping {len(corrupt)} corrupt or truncated image(s), e.g. {corrupt[0]}",
            stacklevel=5,
        )
    if non_image:
        warnings.warn(
            f"{origin}: ignoring {sum(non_image.values())} non-image file(s) "
            f"({', '.join(sorted(non_image))}); images are {', '.join(IMAGE_EXTENSIONS)}",
            stacklevel=5,
        )
    keep = np.array(readable, dtype=bool)
    items = np.array(paths, dtype=object)[keep] if paths else np.array([], dtype=object)
    y = np.array(labels, dtype=np.int64)[keep] if paths else np.array([], dtype=np.int64)
    counts = np.bincount(y, minlength=len(class_dirs))
    for label, class_dir in enumerate(class_dirs):
        if counts[label] == 0:
            raise ValueError(
                f"{origin}: class folder {str(class_dir)!r} has no readable images "
                f"({', '.join(IMAGE_EXTENSIONS)}); add images or remove the folder. "
                f"Received: {counts.tolist()} images per class"
            )
    return Source(
        kind="files",
        train=Split(items, y),
        class_names=[p.name for p in class_dirs],
        item_shape=(None, None, 3),
        description=f"image folder {root}",
        skipped={
            "corrupt": len(corrupt),
            "corrupt_files": corrupt,
            "non_image": sum(non_image.values()),
        },
        fingerprint=digest.hexdigest()[:16],
    )
