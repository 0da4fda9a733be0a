"""Scanning an image folder into a Source: `DIR/<class>/...` or `DIR/{train,val,test}/<class>/...`.

Decisions:
- The layout is read by `_layout.folder_layout` (split folders or class folders; an ambiguous
  folder is a one-line error naming `?layout=classes|splits`).
- Class names are the sorted names of the class folders (of train/ in a split layout); images
  may sit at any depth inside a class folder. val/ and test/ may lack a class, but a class
  folder there that train/ lacks is an error (the model would never see that class).
- Files outside class folders (loose in the root or in a split folder) and non-image files are
  ignored and counted; hidden files (.DS_Store, ...) silently. Unreadable images are found
  up-front and skipped with one warning (`_files`).
"""

from __future__ import annotations

import os
from pathlib import Path

from zoo.data._files import NOT_IMAGE, OUTSIDE, files_source, is_image_name
from zoo.data._layout import folder_layout, visible_dirs
from zoo.data._source import Source


def scan_folder(root: str | Path, origin: str, layout: str | None = None) -> Source:
    """List and check the images of a class-per-sub-folder directory, or of its split folders.

    Example:
        >>> source = scan_folder("photos", "photos")   # photos/cat/1.jpg, photos/dog/2.png
        >>> source.class_names, len(source.train)
        (['cat', 'dog'], 2)
        >>> scan_folder("split", "split").val is None   # split/train/cat/..., split/val/cat/...
        False
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        # A relative path is read from the current directory: say which one that is.
        where = "" if root.is_absolute() else f" in {os.getcwd()}"
        raise ValueError(
            f"{origin}: no such directory{where}; a data spec is a folder with one sub-folder per "
            f"class (or train/, val/, test/ ones), a .csv manifest, a .npz file or builtin:NAME. "
            f"Received: {str(root)!r}"
        )
    found = folder_layout(root, origin, layout)
    class_dirs = _class_dirs(found.splits["train"], origin)
    names = [d.name for d in class_dirs]
    ignored: dict[str, list[str]] = (
        {OUTSIDE: [str(d) for d in found.ignored]} if found.ignored else {}
    )
    listed = {
        split: _split_files(folder, names, origin, ignored)
        for split, folder in found.splits.items()
    }
    return files_source(
        origin,
        f"image folder {root} ({found.kind}: {', '.join(found.splits)})",
        names,
        listed,
        ignored,
        [f"class folder {str(d)!r}" for d in class_dirs],
    )


def _class_dirs(folder: Path, origin: str) -> list[Path]:
    class_dirs = visible_dirs(folder)
    if not class_dirs:
        raise ValueError(
            f"{origin}: no class sub-folders; put each class's images in its own sub-folder, "
            f"e.g. {folder / 'cat' / '001.jpg'}. Received: an empty folder or loose files only"
        )
    if len(class_dirs) == 1:
        raise ValueError(
            f"{origin}: only one class folder ({class_dirs[0].name!r}); classification needs at "
            f"least 2 class sub-folders. Received: {str(folder)!r}"
        )
    return class_dirs


def _split_files(folder: Path, names: list[str], origin: str, ignored: dict) -> tuple:
    """(paths, labels) under one split's class folders; what is left out goes to `ignored`."""
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and not entry.name.startswith("."):
            ignored.setdefault(OUTSIDE, []).append(str(entry))
    extra = [d.name for d in visible_dirs(folder) if d.name not in names]
    if extra:
        raise ValueError(
            f"{origin}: {folder.name}/ has class folder(s) {', '.join(extra)} that train/ lacks; "
            f"every class needs training images. Received: train/ classes {', '.join(names)}"
        )
    paths: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(names):
        for parent, subdirs, files in os.walk(folder / name):
            subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
            for file in sorted(files):
                path = os.path.join(parent, file)
                if is_image_name(file):
                    paths.append(path)
                    labels.append(label)
                elif not file.startswith("."):
                    ignored.setdefault(NOT_IMAGE, []).append(path)
    return paths, labels
