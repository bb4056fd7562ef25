"""What the app and `python -m export.finetune` agree on, kept in the torch-free core.

The app runs the fine-tune in a separate process (it never imports torch), so the two sides
meet only through files and lines: the list of photos handed over, the progress lines the run
prints, and the held-out scores it writes into the new bundle's manifest. Both sides import
this module, so neither can drift from the other (the least number of photos included).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from captioner.writers import sidecar_path

MIN_PHOTOS = 10  # below this there is nothing to hold out and nothing to learn from
PROGRESS_KEY = "progress"
SHOWN_METRICS = ("BLEU-4", "METEOR", "ROUGE-L", "CIDEr")  # the app's before/after table


class Stage(Enum):
    """Where a fine-tune run is, in the order it goes through them."""

    PREPARING = "preparing"
    FEATURES = "features"
    TRAINING = "training"
    SCORING_BEFORE = "scoring before"
    EXPORTING = "exporting"
    SCORING_AFTER = "scoring after"
    DONE = "done"


@dataclass(frozen=True)
class Progress:
    """One progress line: the stage, a line for a person, and how far the stage is (0-1) when
    that is known (training: epochs or the time limit, whichever is nearer its end)."""

    stage: Stage
    text: str
    done: float | None = None

    def line(self) -> str:
        """The line as printed on stdout: one JSON object."""
        fields: dict[str, object] = {PROGRESS_KEY: self.stage.value, "text": self.text}
        if self.done is not None:
            fields["done"] = round(min(max(self.done, 0.0), 1.0), 4)
        return json.dumps(fields)


def parse_progress(line: str) -> Progress | None:
    """The progress a stdout line carries; None for any other line (the run's result, noise)."""
    try:
        data = json.loads(line)
        stage = Stage(data[PROGRESS_KEY])
        done = data.get("done")
        fraction = float(done) if isinstance(done, (int, float)) and math.isfinite(done) else None
        return Progress(stage, str(data.get("text", "")), fraction)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


# --- the photos handed over ----------------------------------------------------------------------


def write_photo_list(path: Path, photos: list[Path]) -> None:
    """One photo path a line (UTF-8); each photo's captions are its NAME.txt, read by the run."""
    path.write_text("".join(f"{p}\n" for p in photos), encoding="utf-8")


def read_photo_list(path: Path) -> dict[Path, list[str]]:
    """The listed photos that are there and have a caption file, with its non-empty lines, in
    list order."""
    found: dict[Path, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        photo = Path(line.strip())
        sidecar = sidecar_path(photo)
        if not line.strip() or photo in found or not (photo.is_file() and sidecar.is_file()):
            continue
        captions = [c.strip() for c in sidecar.read_text(encoding="utf-8").splitlines() if c.strip()]
        if captions:
            found[photo] = captions
    return found


# --- the scores written back -----------------------------------------------------------------------


@dataclass(frozen=True)
class HeldOutScores:
    """`scores.finetune` of a fine-tuned bundle: the source and the new model on the same
    held-out photos (beam `beam`, through captioner/)."""

    images: int
    beam: int
    before: dict[str, float]
    after: dict[str, float]

    def to_json(self) -> dict[str, object]:
        return {"split": "held-out", "images": self.images, "beam": self.beam,
                "before": self.before, "after": self.after}

    def better(self, metric: str = "CIDEr") -> bool | None:
        """Whether the new model scores higher on `metric` (None when either lacks it)."""
        if metric not in self.before or metric not in self.after:
            return None
        return self.after[metric] > self.before[metric]

    def rows(self) -> list[tuple[str, float, float]]:
        """(metric, before, after) for the metrics both sides have, in SHOWN_METRICS order."""
        return [(m, self.before[m], self.after[m]) for m in SHOWN_METRICS
                if m in self.before and m in self.after]


def read_held_out_scores(bundle: Path) -> HeldOutScores | None:
    """The held-out scores in a bundle's manifest; None when it has none or cannot be read."""
    try:
        data = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
        found = data["scores"]["finetune"]

        def metrics(key: str) -> dict[str, float]:
            return {str(k): float(v) for k, v in found[key].items()}

        return HeldOutScores(int(found["images"]), int(found["beam"]), metrics("before"),
                             metrics("after"))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
