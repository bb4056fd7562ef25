"""Where the default model bundle is: the one place that decides it.

The bundle lives in the repository as `models/default/`. A checkout (editable install or
`python -m captioner` from the clone) finds it there; a wheel or a plain `pip install .`
carries the same folder as package data of `captioner_models` (pyproject maps that package to
`models/`), installed beside `captioner` in site-packages. `$CAPTIONER_MODEL` overrides both.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from captioner.errors import BundleError

ENV = "CAPTIONER_MODEL"
MODELS_PACKAGE = "captioner_models"
NAME = "default"
HOW_TO_POINT = f"point at a bundle folder with --model PATH or {ENV}=PATH"

_CHECKOUT = Path(__file__).resolve().parent.parent / "models" / NAME


def _is_bundle(folder: Path) -> bool:
    return (folder / "manifest.json").is_file()


def packaged_bundle() -> Path | None:
    """The bundle installed as package data of `captioner_models`, if that package is there."""
    try:
        spec = importlib.util.find_spec(MODELS_PACKAGE)
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(location) / NAME
        if _is_bundle(folder):
            return folder
    return None


def candidates() -> list[Path]:
    """Where the default bundle is looked for, in order (after $CAPTIONER_MODEL)."""
    found = [_CHECKOUT]
    packaged = packaged_bundle()
    if packaged is not None:
        found.append(packaged)
    found.append(Path.cwd() / "models" / NAME)
    return found


def default_bundle() -> Path:
    """$CAPTIONER_MODEL, else the checkout's models/default, else the installed copy.

    Raises BundleError, saying how to point at a bundle, when none of them is there.
    """
    if ENV in os.environ:
        chosen = Path(os.environ[ENV]).expanduser()
        if not chosen.is_dir():
            raise BundleError(f"{ENV}={chosen} is not a folder; {HOW_TO_POINT}")
        return chosen
    places = candidates()
    for folder in places:
        if _is_bundle(folder):
            return folder
    looked = ", ".join(str(p) for p in dict.fromkeys(places))
    raise BundleError(f"no default model bundle found (looked in {looked}); {HOW_TO_POINT}")
