"""Safe image loading and the one preprocessing function.

`preprocess` is shared by training (feature caching), export (parity checks) and the app, so
a model sees exactly the same pixels wherever it runs. It resizes the *whole* image to the
model's square input without cropping, because most Flickr8k training images are stored as
squashed 224x224 copies.
"""

from __future__ import annotations

import errno
import struct
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageMode, ImageOps

from captioner.errors import ImageLoadError, detail

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".jfif", ".ppm", ".avif"}
)
# What Pillow may open, whatever a file is named: the photo formats, and not the plugins that
# are rarely needed and often fragile (EPS would even start Ghostscript).
IMAGE_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "GIF", "TIFF", "WEBP", "BMP", "DIB", "PPM", "AVIF")
try:  # HEIC/HEIF photos with the `heic` extra (pillow-heif); without it they are not read
    from pillow_heif import register_heif_opener
except ImportError:
    pass
else:
    register_heif_opener()
    IMAGE_EXTENSIONS |= {".heic", ".heif"}
    IMAGE_FORMATS += ("HEIF",)
MAX_PIXELS = 100_000_000  # more decoded pixels than this are refused as probable bombs
# ...and more decoded bytes (pixels x the mode's bytes per pixel) than 100 megapixels of 8-bit
# RGB: RGBA, CMYK, 16- and 32-bit images cost more per pixel, and a tiny PNG can ask for GBs.
MAX_DECODED_BYTES = 3 * MAX_PIXELS
DEEP_GREY_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_ROWS_PER_BAND = 256  # rows converted at a time from 16/32-bit grey: no full-size float copy


@dataclass(frozen=True)
class InputSpec:
    """What the encoder expects: a square RGB image of `size` pixels, normalised per channel."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def to_json(self) -> dict:
        return {"size": self.size, "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_json(cls, data: dict) -> InputSpec:
        return cls(int(data["size"]), tuple(data["mean"]), tuple(data["std"]))  # type: ignore[arg-type]


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def load_image(path: str | Path, draft_size: int | None = None) -> Image.Image:
    """Open an image file as upright RGB, or raise ImageLoadError with a one-line reason.

    `draft_size` lets JPEG decoding skip resolution the model will not use (Pillow's draft
    mode decodes at 1/2, 1/4 or 1/8 scale, never below the size asked for). The pixel limit
    applies to what is decoded, so a 100-megapixel JPEG is read at 1/8 scale, not refused.
    Only ImageLoadError leaves this function, whatever the file holds.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageLoadError(path, "empty file (0 bytes)")
        with warnings.catch_warnings():
            # Pillow warns about corrupt EXIF and the like (the reason, if any, is in what it
            # raises), and warns above ~89 Mpx and raises above twice that; the limit that
            # counts is MAX_PIXELS on the decoded size, checked once draft mode has had its say.
            warnings.simplefilter("ignore")
            with Image.open(path, formats=IMAGE_FORMATS) as img:
                if draft_size and img.format == "JPEG":
                    img.draft("RGB", (draft_size, draft_size))
                if img.width * img.height > MAX_PIXELS:
                    raise ImageLoadError(path, f"image too large ({img.width}x{img.height} pixels, "
                                               f"the limit is {MAX_PIXELS // 1_000_000} megapixels)")
                if decoded_bytes(img) > MAX_DECODED_BYTES:
                    raise ImageLoadError(path, f"image too large ({img.width}x{img.height} pixels "
                                               f"of mode {img.mode} take {decoded_bytes(img) >> 20} MB "
                                               f"decoded, the limit is {MAX_DECODED_BYTES >> 20} MB)")
                if img.width < 1 or img.height < 1:
                    raise ImageLoadError(path, f"image has no pixels ({img.width}x{img.height})")
                img.seek(0)  # the first frame of an animation or the first page of a TIFF
                return to_rgb(_upright(img))
    except ImageLoadError:
        raise
    except FileNotFoundError:
        link = Path(path).is_symlink()
        gone = "broken symbolic link (its target does not exist)" if link else "file not found"
        raise ImageLoadError(path, gone) from None
    except IsADirectoryError:
        raise ImageLoadError(path, "is a folder, not an image") from None
    except PermissionError:
        raise ImageLoadError(path, "permission denied") from None
    except Image.DecompressionBombError:
        raise ImageLoadError(path, "image too large (possible decompression bomb)") from None
    except Image.UnidentifiedImageError:
        raise ImageLoadError(path, "not an image file, or a format Pillow cannot read") from None
    except MemoryError:
        raise ImageLoadError(path, "not enough memory to decode this image") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ImageLoadError(path, "symbolic link loop (the link leads back to itself)") from None
        if exc.errno is not None:  # the system could not read it (a failing disk, a lost share)
            raise ImageLoadError(path, f"cannot read file ({exc.strerror or detail(exc)})") from None
        raise ImageLoadError(path, f"broken or truncated image ({detail(exc)})") from None
    except (ValueError, SyntaxError, EOFError) as exc:
        raise ImageLoadError(path, f"broken or truncated image ({detail(exc)})") from None
    except Exception as exc:  # a decoder's internal error on malformed data: never a crash
        raise ImageLoadError(path, f"cannot decode image ({type(exc).__name__}: {detail(exc)})") from None


def decoded_bytes(img: Image.Image) -> int:
    """Pixels times the mode's bytes per pixel (bands x bytes per band; 1-bit counts as 1)."""
    try:
        mode = ImageMode.getmode(img.mode)
        band = int(mode.typestr[-1]) if mode.typestr[-1].isdigit() else 4
        per_pixel = len(mode.bands) * band
    except (KeyError, ValueError):
        per_pixel = 4
    return img.width * img.height * per_pixel


def _upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; a photo whose EXIF is malformed is kept as stored."""
    try:
        upright = ImageOps.exif_transpose(img)
    except (OSError, ValueError, SyntaxError, EOFError, KeyError, IndexError, TypeError,
            ZeroDivisionError, AttributeError, struct.error):
        return img
    return upright if upright is not None else img


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode to RGB; transparent areas become white, as a viewer would show them."""
    if img.mode == "RGB":
        img.load()
        return img.copy()
    if img.mode in DEEP_GREY_MODES:
        return _deep_grey_to_rgb(img)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _deep_grey_to_rgb(img: Image.Image) -> Image.Image:
    """16/32-bit grey to 8-bit RGB, a band of rows at a time: a 9999x9999 16-bit PNG took
    2.9 GB when converted through one full-size float64 array."""
    if img.mode.startswith("I;16"):
        top = 65535.0
    else:
        high = img.getextrema()[1]
        top = 65535.0 if isinstance(high, (int, float)) and high > 255 else 255.0
    width, height = img.size
    grey = np.empty((height, width), dtype=np.uint8)
    for y in range(0, height, _ROWS_PER_BAND):
        band = np.asarray(img.crop((0, y, width, min(height, y + _ROWS_PER_BAND))), dtype=np.float64)
        grey[y:y + band.shape[0]] = np.clip(band / top * 255.0, 0, 255).astype(np.uint8)
    return Image.fromarray(grey, "L").convert("RGB")


def preprocess(img: Image.Image, spec: InputSpec) -> np.ndarray:
    """RGB image -> float32 array (3, size, size), resized whole (no crop) and normalised.

    Normalising goes through a 256-entry table per channel, computed with exactly the float32
    operations of `(x / 255 - mean) / std`, so the result is bit for bit the same as doing
    that arithmetic on every pixel, in a third of the time.
    """
    if img.mode != "RGB":
        img = to_rgb(img)
    resized = img.resize((spec.size, spec.size), Image.Resampling.BILINEAR, reducing_gap=None)
    pixels = np.asarray(resized)  # (size, size, 3) uint8
    table = _normalise_table(spec.mean, spec.std)
    out = np.empty((3, spec.size, spec.size), dtype=np.float32)
    for channel in range(3):
        np.take(table[channel], pixels[:, :, channel], out=out[channel])
    return out


@lru_cache(maxsize=8)
def _normalise_table(mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """(3, 256) float32: the normalised value of every 8-bit level, per channel."""
    levels = np.arange(256, dtype=np.float32)[:, None] / 255.0
    table = (levels - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    table.setflags(write=False)
    return np.ascontiguousarray(table.T)


def preprocess_batch(images: list[Image.Image], spec: InputSpec) -> np.ndarray:
    """Stack preprocessed images into one (N, 3, size, size) float32 batch."""
    if not images:
        return np.zeros((0, 3, spec.size, spec.size), dtype=np.float32)
    return np.stack([preprocess(img, spec) for img in images])
