"""How an image folder is laid out: `DIR/<class>/...` or `DIR/{train,val,test}/<class>/...`.

Pure directory listing (no image is opened). Decisions:
- Sub-folders named train, val, validation or test (any case; `validation` is `val`) make the
  folder a split layout: the splits as given, class names from the class folders in train/.
  Without them it is a class layout: one sub-folder per class, validation carved by the seeded
  split rules.
- A folder that fits both readings is refused rather than guessed: split folders beside other
  folders (`train/`, `val/`, `cats/`), or split folders holding images directly (they could be
  two classes named "train" and "test"). The error names both readings and the query that picks
  one: `?layout=classes` (every sub-folder a class) or `?layout=splits` (the split folders'
  class folders; other folders and loose images are left out and counted).
- Hidden entries (starting with ".") are ignored everywhere.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from zoo.data._files import is_image_name

LAYOUTS = ("classes", "splits")
# Folder name (lower case) -> split.
SPLIT_FOLDERS = {"train": "train", "val": "val", "validation": "val", "test": "test"}


@dataclasses.dataclass(frozen=True)
class FolderLayout:
    """A folder's reading: `kind` "classes" or "splits"; `splits` maps split -> the folder that
    holds its class folders ({"train": root} for the class layout); `ignored`: other folders
    beside the split folders, left out under `?layout=splits`."""

    kind: str
    splits: dict[str, Path]
    ignored: tuple[Path, ...] = ()


def visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _loose_images(folder: Path) -> bool:
    return any(p.is_file() and is_image_name(p.name) for p in folder.iterdir())


def folder_layout(root: Path, origin: str, layout: str | None = None) -> FolderLayout:
    """Read `root` as a class layout or a split layout (`layout` forces one; None detects).

    Example:
        >>> folder_layout(Path("split"), "split")   # split/train/cat, split/val/cat, ...
        FolderLayout(kind='splits', splits={'train': ..., 'val': ...})
    """
    subdirs = visible_dirs(root)
    split_dirs = [d for d in subdirs if d.name.lower() in SPLIT_FOLDERS]
    if layout == "classes" or (layout is None and not split_dirs):
        return FolderLayout("classes", {"train": root})
    if layout is None:
        _check_unambiguous(root, origin, subdirs, split_dirs)
    splits: dict[str, Path] = {}
    for folder in split_dirs:
        split = SPLIT_FOLDERS[folder.name.lower()]
        if split in splits:
            raise ValueError(
                f"{origin}: two folders give the {split!r} split ({splits[split].name}/ and "
                f"{folder.name}/); keep one. Received: {', '.join(d.name for d in split_dirs)}"
            )
        splits[split] = folder
    if "train" not in splits:
        raise ValueError(
            f"{origin}: split folders need a train/ folder with the class folders; add it, or "
            f"read the folders as classes with ?layout=classes. Received: "
            f"{', '.join(d.name + '/' for d in split_dirs)}"
        )
    return FolderLayout("splits", splits, tuple(d for d in subdirs if d not in split_dirs))


def _check_unambiguous(root: Path, origin: str, subdirs: list[Path], split_dirs: list[Path]):
    others = [d.name for d in subdirs if d not in split_dirs]
    holding = [d.name for d in split_dirs if _loose_images(d)]
    if not others and not holding:
        return
    names = ", ".join(d.name for d in subdirs)
    splits = ", ".join(d.name + "/" for d in split_dirs)
    received = (
        f"split folders {splits} beside other folders {', '.join(others)}"
        if others
        else f"{', '.join(h + '/' for h in holding)} {'holds' if len(holding) == 1 else 'hold'} "
        f"images directly"
    )
    raise ValueError(
        f"{origin} can be read two ways: as {len(subdirs)} class folders ({names}), or as "
        f"split folders ({splits}) holding class folders (other folders and loose images left "
        f"out); pick one with ?layout=classes or ?layout=splits after the folder (e.g. "
        f"--data '{root}?layout=splits'). Received: {received}"
    )
