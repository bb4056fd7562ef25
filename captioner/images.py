"""Safe image loading and the one preprocessing function.

`preprocess` is shared by training (feature caching), export (parity checks) and the app, so
a model sees exactly the same pixels wherever it runs. It resizes the *whole* image to the
model's square input without cropping, because most Flickr8k training images are stored as
squashed 224x224 copies.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from captioner.errors import ImageLoadError

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".jfif", ".ppm"}
)
MAX_PIXELS = 100_000_000  # larger images are refused as probable decompression bombs


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
    mode decodes at 1/2, 1/4 or 1/8 scale, never below the size asked for).
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise ImageLoadError(
                        path, f"image too large ({img.width}x{img.height} pixels)"
                    )
                if draft_size and img.format == "JPEG":
                    img.draft("RGB", (draft_size, draft_size))
                img.seek(0)
                upright = ImageOps.exif_transpose(img)
                return to_rgb(upright if upright is not None else img)
    except ImageLoadError:
        raise
    except FileNotFoundError:
        raise ImageLoadError(path, "file not found") from None
    except IsADirectoryError:
        raise ImageLoadError(path, "is a folder, not an image") from None
    except PermissionError:
        raise ImageLoadError(path, "permission denied") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageLoadError(path, "image too large (possible decompression bomb)") from None
    except Image.UnidentifiedImageError:
        raise ImageLoadError(path, "not an image file, or a format Pillow cannot read") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageLoadError(path, f"broken or truncated image ({exc})") from None


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode to RGB; transparent areas become white, as a viewer would show them."""
    if img.mode == "RGB":
        img.load()
        return img.copy()
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr8 = np.clip(arr / top * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, "L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def preprocess(img: Image.Image, spec: InputSpec) -> np.ndarray:
    """RGB image -> float32 array (3, size, size), resized whole (no crop) and normalised."""
    if img.mode != "RGB":
        img = to_rgb(img)
    resized = img.resize((spec.size, spec.size), Image.Resampling.BILINEAR, reducing_gap=None)
    arr = np.asarray(resized, dtype=np.float32) / 255.0
    arr = (arr - np.asarray(spec.mean, dtype=np.float32)) / np.asarray(spec.std, dtype=np.float32)
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


def preprocess_batch(images: list[Image.Image], spec: InputSpec) -> np.ndarray:
    """Stack preprocessed images into one (N, 3, size, size) float32 batch."""
    if not images:
        return np.zeros((0, 3, spec.size, spec.size), dtype=np.float32)
    return np.stack([preprocess(img, spec) for img in images])
