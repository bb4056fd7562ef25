"""A stand-in for `python -m export.finetune` in the app's tests: the same arguments and the same
progress lines, in a second and without torch. The app runs it as a child process, as it runs
the real one.

FAKE_FINETUNE picks what it does: `ok` (progress, then a copy of --from with held-out scores
at --out), `hang` (progress and half a bundle at --out, then waits to be killed), `fail` (the
real run's too-few-photos line, exit 2). FAKE_FINETUNE_RECORD names a file the photo list it
was handed is copied to.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from captioner.bundle import load_bundle, write_manifest
from captioner.finetune_protocol import HeldOutScores, Progress, Stage

BEFORE = {"BLEU-4": 0.201, "METEOR": 0.206, "ROUGE-L": 0.463, "CIDEr": 0.529}
AFTER = {"BLEU-4": 0.243, "METEOR": 0.221, "ROUGE-L": 0.489, "CIDEr": 0.655}


def say(stage: Stage, text: str, done: float | None = None) -> None:
    print(Progress(stage, text, done).line(), flush=True)


def main() -> int:
    p = argparse.ArgumentParser()
    for name in ("--from", "--data", "--out", "--cache-dir", "--minutes"):
        p.add_argument(name, required=True)
    p.add_argument("--progress-jsonl", action="store_true")
    args = p.parse_args()
    mode = os.environ.get("FAKE_FINETUNE", "ok")
    record = os.environ.get("FAKE_FINETUNE_RECORD")
    if record:
        shutil.copyfile(args.data, record)
    if mode == "fail":
        print(f"only 3 captioned photos found in {args.data} (need at least 10: images with a "
              "NAME.txt caption beside them)", file=sys.stderr, flush=True)
        return 2
    out = Path(args.out)
    say(Stage.PREPARING, f"fine-tuning {args.__dict__['from']} on {args.data}")
    say(Stage.FEATURES, "12 photos to train on, 1 for early stopping, 2 to score; 0 new words")
    print("features efficientnet_lite0:  50%|#####     | 1/2\rfeatures efficientnet_lite0: 100%",
          file=sys.stderr, flush=True)
    say(Stage.TRAINING, "epoch 1 of 15: loss 1.2000, val loss 1.1000", 0.4)
    if mode == "hang":
        out.mkdir(parents=True)
        (out / "encoder.onnx").write_bytes(b"half a graph")
        time.sleep(120)
        return 1
    say(Stage.TRAINING, "epoch 2 of 15: loss 1.0000, val loss 1.0500", 1.0)
    say(Stage.SCORING_BEFORE, "scoring the source on 2 held-out photos")
    shutil.copytree(args.__dict__["from"], out)
    bundle = load_bundle(out)
    bundle.manifest.scores = {"finetune": HeldOutScores(2, 3, BEFORE, AFTER).to_json()}
    write_manifest(out, bundle.manifest)
    say(Stage.DONE, f"wrote {out}", 1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
