"""The one way an image becomes model input: decode with Pillow, match channels, resize.

Training (finetune's tf.data pipelines call these functions through `tf.numpy_function`) and
calibration (`load_arrays`) both use this module, so the pixels a model is calibrated and
verified on are bit-for-bit the pixels it was trained on.

Decisions:
- A JPEG bigger than twice the model input is decoded at a reduced DCT scale (Pillow's `draft`,
  never below the input size) before the resize: 2-4x less work for photos, and the same
  pixels in training and calibration because both call `decode_image`.
- Decoding keeps grayscale files gray and makes every other mode RGB: palette colours are looked
  up, alpha is dropped (not composited, as tf.io.decode_image did). A GIF, WebP or TIFF with
  several frames gives its first. EXIF rotation is not applied (training never applied it either).
- 16-bit gray files (PNG, TIFF) open in Pillow as mode "I;16" with samples 0-65535; they are
  scaled by that true range (x * 255 / 65535, rounded), so 65535 is 255 and 257*k is k. Pillow's
  own `convert("L")` would clip every sample above 255 to white. 16-bit RGB(A) files reach us
  already as 8-bit (Pillow keeps each sample's high byte, at most 1 level below the scaled value).
  32-bit integer images ("I") have no fixed range and are refused (`UnsupportedImageError`).
- Channels are matched before resizing when that makes fewer planes to resize: RGB -> gray uses
  ITU-R 601 luma with TensorFlow's weights (0.2989, 0.587, 0.114), gray -> RGB repeats the
  resized plane. A gray file for a gray model is used as is (no luma round trip).
- Resizing is Pillow's antialiased bilinear (triangle) filter on float32 planes ("F" mode):
  the same filter tf.image.resize(antialias=True) applies, computed in double precision and
  never overshooting 0-255. An image already at the size is only cast to float32.
"""

from __future__ import annotations

import os

import numpy as np

# ITU-R 601-2 luma, the coefficients tf.image.rgb_to_grayscale uses.
LUMA = np.array([0.2989, 0.5870, 0.1140], dtype=np.float32)
_GRAY_MODES = ("1", "L", "LA", "F")
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
# Pillow modes with no fixed sample range: which 0-255 value a sample means cannot be known.
_UNSUPPORTED_MODES = ("I",)


class UnsupportedImageError(ValueError):
    """A file Pillow reads but whose pixels have no defined 0-255 meaning (32-bit integers)."""


def check_mode(mode: str, path) -> None:
    """Refuse the Pillow modes `decode_image` cannot map to 0-255 (one-line error).

    Example:
        >>> check_mode("I", "depth.tif")
        UnsupportedImageError: depth.tif: 32-bit integer pixels have no fixed range; ...
    """
    if mode in _UNSUPPORTED_MODES:
        raise UnsupportedImageError(
            f"{os.fsdecode(path)}: 32-bit integer pixels have no fixed range; save the image "
            f"as 8- or 16-bit. Received: Pillow mode {mode!r}"
        )


def read_pixels(
    path: str | os.PathLike[str] | bytes, at_least: tuple[int, int] | None = None
) -> np.ndarray:
    """An image file's pixels as uint8 (H, W, 1) for grayscale files, else (H, W, 3) RGB.

    `at_least=(height, width)` lets a JPEG decode at a reduced DCT scale (1/2, 1/4 or 1/8)
    that is still at least that size: much less work for photos bigger than the model input.

    Example:
        >>> read_pixels("photos/cat/1.png").shape
        (375, 500, 3)
    """
    pixels = np.asarray(_decoded(path, at_least))
    return pixels[..., None] if pixels.ndim == 2 else pixels


def _decoded(path: str | os.PathLike[str] | bytes, at_least: tuple[int, int] | None):
    """The file as a loaded Pillow image in mode "L" (grayscale files) or "RGB"."""
    from PIL import Image  # imported late: only image folders need Pillow

    if isinstance(path, bytes):  # tf.numpy_function hands paths over as bytes
        path = os.fsdecode(path)
    with Image.open(path) as image:
        if at_least is not None and image.format == "JPEG":
            image.draft(image.mode, (at_least[1], at_least[0]))
        check_mode(image.mode, path)
        if image.mode in _SIXTEEN_BIT:
            # Scale by the 16-bit range; Pillow's convert("L") clips at 255 instead.
            wide = np.asarray(image, dtype=np.float64)
            return Image.fromarray(np.rint(wide * (255.0 / 65535.0)).astype(np.uint8))
        return image.convert("L" if image.mode in _GRAY_MODES else "RGB")


def to_shape(image: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """One image (H, W, C) with C 1 or 3, any numeric dtype, as float32 at `shape` (H, W, C).

    Example:
        >>> to_shape(np.zeros((8, 8, 1), np.uint8), (28, 28, 3)).shape
        (28, 28, 3)
    """
    height, width, channels = shape
    x = np.asarray(image, dtype=np.float32)
    if x.shape[-1] == 3 and channels == 1:
        # Luma first: one plane to resize instead of three.
        x = (x[..., 0] * LUMA[0] + x[..., 1] * LUMA[1] + x[..., 2] * LUMA[2])[..., None]
    if x.shape[:2] != (height, width):
        x = np.stack([_resize_plane(x[..., c], height, width) for c in range(x.shape[-1])], -1)
    if x.shape[-1] == 1 and channels == 3:
        x = np.repeat(x, 3, axis=-1)
    return x


def to_shape_batch(images: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """`to_shape` over a batch (N, H, W, C): float32 (N, *shape), one image at a time.

    Example:
        >>> to_shape_batch(np.zeros((4, 8, 8, 1)), (28, 28, 1)).shape
        (4, 28, 28, 1)
    """
    out = np.empty((len(images), *shape), dtype=np.float32)
    for index, image in enumerate(images):
        out[index] = to_shape(image, shape)
    return out


def decode_image(path: str | os.PathLike[str] | bytes, shape: tuple[int, int, int]) -> np.ndarray:
    """An image file as model input: float32 raw 0-255 pixels at `shape` (H, W, C).

    The same values as `to_shape(read_pixels(path, shape[:2]), shape)`, computed on Pillow's
    own bands: no numpy round trip per plane, which is most of the cost for small images.
    Raises whatever Pillow raises for an unreadable file (OSError, SyntaxError, ...).

    Example:
        >>> decode_image("photos/cat/1.jpg", (224, 224, 3)).dtype
        dtype('float32')
    """
    from PIL import Image

    height, width, channels = shape
    image = _decoded(path, at_least=(height, width))
    if image.mode == "RGB" and channels == 1:
        return to_shape(np.asarray(image), shape)  # luma first, in numpy, as for arrays
    planes = image.split()
    if image.size != (width, height):
        planes = [p.convert("F").resize((width, height), Image.Resampling.BILINEAR) for p in planes]
    x = np.stack([np.asarray(p, dtype=np.float32) for p in planes], axis=-1)
    return np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 and channels == 3 else x


def _resize_plane(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    from PIL import Image

    resized = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32), mode="F").resize(
        (width, height), Image.Resampling.BILINEAR
    )
    return np.asarray(resized, dtype=np.float32)
