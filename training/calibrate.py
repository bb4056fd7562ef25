"""Fit a bundle's caption confidence and measure how well it ranks captions.

    python -m training.calibrate --bundle models/default --flickr ../shared/data/flickr8k \
        --ood ../shared/data/coco_ood

1. The training photos' mean features (a sample) give the centre and scale that the
   feature-distance signal is measured against.
2. The bundle captions the Flickr8k dev photos (beam 3, as users run it); each caption's own
   CIDEr against its references is the target of a logistic model over the signals of
   captioner/confidence.py (soft labels min(CIDEr, 1)), so the confidence reads as "how
   likely this caption is right"; the dev photos are also the neighbour memory.
3. The fitted model goes into the bundle (`calibration.json`); the Spearman correlation of
   confidence and per-photo CIDEr is reported on Flickr8k test + coco_ood, neither of which
   took any part in the fit (coco_ood's captions are read for that report only).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from captioner.bundle import CALIBRATION, MANIFEST, Manifest, load_bundle, write_manifest
from captioner.captioner import Captioner, CaptionOptions
from captioner.confidence import Calibration, Neighbours, Phrases, caption_signals, photo_signals
from captioner.images import load_image, preprocess_batch
from captioner.vocab import tokenize
from training.data import CaptionSet, folder_split, load_splits


@dataclass
class Scored:
    """Per photo: the raw signals (distance still missing) and the caption's own CIDEr."""

    signals: np.ndarray  # (N, len(SIGNALS))
    mean_features: np.ndarray  # (N, E)
    cider: np.ndarray  # (N,)


def per_photo_cider(references: list[list[str]], candidates: list[str]) -> np.ndarray:
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tok = PTBTokenizer()
    gts = tok.tokenize({i: [{"caption": r} for r in refs] for i, refs in enumerate(references)})
    res = tok.tokenize({i: [{"caption": c or "empty"}] for i, c in enumerate(candidates)})
    _, scores = Cider().compute_score(gts, res)
    return np.asarray(scores, dtype=np.float64)


def run_split(cap: Captioner, split: CaptionSet, phrases: Phrases, batch: int = 32
              ) -> tuple[Scored, list[str]]:
    spec, words = cap.bundle.manifest.input_spec, cap.bundle.tag_words
    rows, means, texts = [], [], []
    for start in range(0, len(split), batch):
        images = [load_image(p, draft_size=spec.size) for p in split.paths[start:start + batch]]
        enc = cap.encode(preprocess_batch(images, spec))
        for i, result in enumerate(cap.decode(enc, CaptionOptions(beam_size=3))):
            probs = enc.tags[i] if enc.tags is not None else None
            rows.append(caption_signals(result.score, result.alternatives, result.words, probs,
                                        words, phrases, (0.0, 0.0)))
            means.append(enc.features[i].mean(axis=0))
            texts.append(result.text)
    cider = per_photo_cider(split.captions, texts)
    return Scored(np.array(rows), np.array(means), cider), texts


@dataclass
class Photos:
    """What the photo signals are measured against: the training centre, and the neighbours."""

    center: np.ndarray
    scale: np.ndarray
    neighbours: Neighbours
    phrases: Phrases

    def signals(self, scored: Scored, offset: int | None = None) -> np.ndarray:
        """Fill in each photo's distance and neighbour score; `offset`: these photos sit in the
        neighbour memory from that row on, and each leaves itself out."""
        x = scored.signals.copy()
        for i, mean in enumerate(scored.mean_features):
            x[i, -2:] = photo_signals(mean, self.center, self.scale, self.neighbours,
                                      None if offset is None else offset + i)
        return x


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, steps: int = 3000
                 ) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """Logistic regression on standardised x with soft labels y in [0, 1] (gradient descent)."""
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / scale
    w, b = np.zeros(z.shape[1]), 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        w -= 0.5 * (z.T @ (p - y) / len(y) + l2 * w)
        b -= 0.5 * float(np.mean(p - y))
    return w, b, mean, scale


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def make_calibration(x: np.ndarray, cider: np.ndarray, photos: Photos) -> Calibration:
    w, b, mean, sd = fit_logistic(x, np.clip(cider, 0.0, 1.0))
    return Calibration(tuple(map(float, w)), float(b), tuple(map(float, mean)), tuple(map(float, sd)),
                       photos.center.astype(np.float32), photos.scale.astype(np.float32),
                       photos.neighbours, photos.phrases)


def predict(cal: Calibration, x: np.ndarray) -> np.ndarray:
    return np.array([cal.confidence(row) for row in x])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--flickr", type=Path, required=True)
    p.add_argument("--ood", type=Path, required=True)
    p.add_argument("--train-sample", type=int, default=800, help="training photos for the centre")
    p.add_argument("--workdir", type=Path, default=Path("runs/calibrate"),
                   help="where the signals and per-photo CIDEr of every split are kept (signals.npz)")
    args = p.parse_args()
    splits = load_splits("flickr8k", args.flickr)
    forget_calibration(args.bundle)
    cap = Captioner(args.bundle, provider="cpu", variant="fp32")
    spec = cap.bundle.manifest.input_spec
    sample = splits["train"].paths[:: max(len(splits["train"]) // args.train_sample, 1)]
    feats = np.concatenate([cap.encode(preprocess_batch(
        [load_image(q, draft_size=spec.size) for q in sample[i:i + 32]], spec)).features.mean(axis=1)
        for i in range(0, len(sample), 32)])
    center, scale = feats.mean(axis=0), feats.std(axis=0) + 1e-3
    phrases = Phrases.build(tokenize(c) for caps in splits["train"].captions for c in caps)
    dev, t_dev = run_split(cap, splits["val"], phrases)
    ood, t_ood = run_split(cap, folder_split(args.ood), phrases)
    test, t_test = run_split(cap, splits["test"], phrases)
    photos = Photos(center, scale, Neighbours.build(dev.mean_features, dev.cider), phrases)
    x_dev, x_ood, x_test = photos.signals(dev, 0), photos.signals(ood), photos.signals(test)
    args.workdir.mkdir(parents=True, exist_ok=True)
    np.savez(args.workdir / "signals.npz", x_dev=x_dev, x_ood=x_ood, x_test=x_test,
             c_dev=dev.cider, c_ood=ood.cider, c_test=test.cider,
             t_dev=np.array(t_dev), t_ood=np.array(t_ood), t_test=np.array(t_test),
             m_dev=dev.mean_features, m_ood=ood.mean_features, m_test=test.mean_features)
    cal = make_calibration(x_dev, dev.cider, photos)
    report = spearman_report(cal, (x_ood, ood), (x_test, test))
    print(json.dumps(report, indent=1))
    bundle = load_bundle(args.bundle, verify=False)
    (args.bundle / CALIBRATION).write_text(json.dumps(cal.to_json()), encoding="utf-8")
    bundle.manifest.calibration_file = CALIBRATION
    bundle.manifest.training["confidence"] = report
    write_manifest(args.bundle, bundle.manifest)


def forget_calibration(bundle_dir: Path) -> None:
    """A refit starts from the uncalibrated bundle (an older calibration may not even load)."""
    manifest = Manifest.from_json(json.loads((bundle_dir / MANIFEST).read_text(encoding="utf-8")))
    if manifest.calibration_file:
        (bundle_dir / manifest.calibration_file).unlink(missing_ok=True)
        manifest.calibration_file = None
        manifest.files.pop(CALIBRATION, None)
        write_manifest(bundle_dir, manifest)


def spearman_report(cal: Calibration, ood: tuple[np.ndarray, Scored], test: tuple[np.ndarray, Scored]
                    ) -> dict[str, float | str]:
    """Spearman(confidence, per-photo CIDEr) on Flickr8k test + coco_ood (both held out), and
    for the mean log-prob alone."""
    (x_ood, s_ood), (x_test, s_test) = ood, test
    both_x, both_c = np.vstack([x_test, x_ood]), np.concatenate([s_test.cider, s_ood.cider])
    return {
        "fitted_on": "flickr8k dev",
        "spearman_test_plus_ood": round(spearman(predict(cal, both_x), both_c), 4),
        "spearman_test": round(spearman(predict(cal, x_test), s_test.cider), 4),
        "spearman_ood": round(spearman(predict(cal, x_ood), s_ood.cider), 4),
        "spearman_mean_logprob_test_plus_ood": round(spearman(both_x[:, 0], both_c), 4),
        "photos_test": len(x_test), "photos_ood": len(x_ood),
    }


if __name__ == "__main__":
    main()
