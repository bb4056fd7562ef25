"""Score a finished bundle on a test split exactly as users run it: through `captioner/`.

    python -m training.evaluate --bundle models/default --data ../shared/data/flickr8k

BLEU-1..4, METEOR, ROUGE-L and CIDEr (pycocoevalcap) at each beam size, plus how many
captions are distinct and whether any shows <unk> or a repeated phrase. The scores go into
the bundle's manifest; a contact sheet of 24 test images is drawn for people to look at.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from captioner.bundle import load_bundle, write_manifest
from captioner.captioner import Captioner, CaptionOptions
from captioner.errors import CaptionerError
from training.data import CaptionSet, folder_split, load_splits
from training.metrics import caption_health, coco_scores
from training.sheets import draw_sheet


def caption_split(captioner: Captioner, split: CaptionSet, beam: int,
                  length_penalty: float | None = None, use_tags: bool = True) -> list[str]:
    out = []
    options = CaptionOptions(beam_size=beam, length_penalty=length_penalty, use_tags=use_tags)
    for _, result in captioner.caption_files(split.paths, options, batch_size=32):
        out.append("" if isinstance(result, CaptionerError) else result.text)
    return out


def evaluate_bundle(bundle_dir: Path, split: CaptionSet, beams: list[int], workdir: Path,
                    sheet_beam: int = 3, name: str = "test", use_tags: bool = True) -> dict[str, Any]:
    """Scores at each beam size; the test split's become the manifest's `scores`, another
    split's (e.g. coco_ood) go under `scores[name]`. `use_tags` False (a comparison: the
    decoder steps are told nothing of the tags) scores without writing the manifest."""
    captioner = Captioner(bundle_dir, provider="cpu", variant="fp32")
    scores: dict[str, Any] = {"split": name, "images": len(split)}
    for beam in beams:
        start = time.time()
        captions = caption_split(captioner, split, beam, use_tags=use_tags)
        entry = coco_scores(split.captions, captions) | caption_health(captions)
        entry["seconds"] = round(time.time() - start, 1)
        scores[f"beam_{beam}"] = {k: round(v, 4) for k, v in entry.items()}
        print(f"beam {beam}: " + json.dumps(scores[f"beam_{beam}"]), flush=True)
        (workdir / f"{name}_captions_beam{beam}.json").write_text(json.dumps(
            {p.name: c for p, c in zip(split.paths, captions)}, indent=1))
        if beam == sheet_beam:
            sheet = "contact_sheet.png" if name == "test" else f"{name}_contact_sheet.png"
            contact_sheet(split, captions, workdir / sheet)
    if not use_tags:
        return scores
    bundle = load_bundle(bundle_dir)
    if name == "test":
        others = {k: v for k, v in bundle.manifest.scores.items()  # other splits' scores stay
                  if isinstance(v, dict) and v.get("split", "test") != "test"}
        bundle.manifest.scores = {**scores, **others}
    else:
        bundle.manifest.scores[name] = scores
    write_manifest(bundle_dir, bundle.manifest)
    return scores


def choose_length_penalty(bundle_dir: Path, split: CaptionSet, beam: int,
                          penalties: list[float]) -> float:
    """Beam search's length penalty by CIDEr on a held-out split (val, never test); the
    winner goes into the bundle's manifest, so the app and CLI decode with it."""
    captioner = Captioner(bundle_dir, provider="cpu", variant="fp32")
    results = {}
    for penalty in penalties:
        entry = coco_scores(split.captions, caption_split(captioner, split, beam, penalty))
        results[penalty] = entry
        print(f"length penalty {penalty}: BLEU-4 {entry['BLEU-4']:.4f} CIDEr {entry['CIDEr']:.4f}",
              flush=True)
    best = max(results, key=lambda p: results[p]["CIDEr"])
    bundle = load_bundle(bundle_dir)
    bundle.manifest.length_penalty = best
    bundle.manifest.training["length_penalty_choice"] = {
        "split": "val", "beam": beam, "CIDEr": {str(p): round(r["CIDEr"], 4) for p, r in results.items()}}
    write_manifest(bundle_dir, bundle.manifest)
    print(f"chose length penalty {best}")
    return best


def contact_sheet(split: CaptionSet, captions: list[str], path: Path) -> None:
    """24 test images with the generated caption (black) and one reference (grey) under each."""
    draw_sheet(split, lambda i: [(captions[i], "black", 3), ("ref: " + split.captions[i][0], "#666666", 2)],
               path, thumb=224, rows=6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--dataset", default="flickr8k", choices=["flickr8k", "coco", "sidecar"])
    parser.add_argument("--annotations", type=Path)
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 3, 5])
    parser.add_argument("--workdir", type=Path, default=Path("runs/eval"))
    parser.add_argument("--ood", type=Path, help="also score this captioned folder (images/ + "
                        "captions.txt), e.g. ../shared/data/coco_ood")
    parser.add_argument("--no-tags", action="store_true", help="score with the tags withheld from "
                        "the decoder steps (a comparison; the manifest is left as it is)")
    parser.add_argument("--skip-test", action="store_true", help="score only --ood")
    parser.add_argument("--choose-length-penalty", type=float, nargs="+", metavar="P",
                        help="first pick beam search's length penalty among these on val")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    splits = load_splits(args.dataset, args.data, args.annotations)
    if args.choose_length_penalty:
        choose_length_penalty(args.bundle, splits["val"], 3, args.choose_length_penalty)
    if not args.skip_test:
        evaluate_bundle(args.bundle, splits["test"], args.beams, args.workdir, use_tags=not args.no_tags)
    if args.ood:
        evaluate_bundle(args.bundle, folder_split(args.ood), args.beams, args.workdir,
                        name=args.ood.name, use_tags=not args.no_tags)


if __name__ == "__main__":
    main()
