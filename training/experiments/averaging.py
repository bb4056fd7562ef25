"""Experiment (not shipped): averaging log-probabilities at every step, measured on val.

    python -m training.experiments.averaging runs/default/best.pt [runs/seed1/best.pt ...]

Greedy captions of the val photos from: each checkpoint alone; the first with its mirrored
view averaged in (test-time augmentation); all checkpoints averaged (an ensemble). CIDEr-D of
each. Results in docs/results.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from captioner.vocab import Vocabulary, tokenize
from training.checkpoint import load_checkpoint
from training.cider import CiderD
from training.data import load_splits
from training.encoders import get_encoder
from training.features import cached_features
from training.model import CaptionDecoder

Member = tuple[CaptionDecoder, int]  # a decoder and the feature view it reads


@torch.no_grad()
def averaged_greedy(members: list[Member], feats: torch.Tensor, vocab: Vocabulary,
                    max_length: int = 20, batch: int = 250) -> list[list[str]]:
    out: list[list[str]] = []
    for s in range(0, feats.shape[1], batch):
        encoded = [m.encode(feats[v, s:s + batch]) for m, v in members]
        hc = [(e[2], e[3]) for e in encoded]
        token = torch.full((encoded[0][0].shape[0],), vocab.start_id, dtype=torch.long)
        steps = []
        for _ in range(max_length):
            logp = torch.zeros(())
            for i, ((model, _), e) in enumerate(zip(members, encoded)):
                logits, h, c, _ = model.step(token, hc[i][0], hc[i][1], e[0], e[1])
                hc[i] = (h, c)
                logp = logp + torch.log_softmax(logits, 1)
            token = logp.argmax(1)
            steps.append(token)
        out += [vocab.decode(t) for t in torch.stack(steps, 1).tolist()]
    return out


def main() -> None:
    checkpoints = [Path(p) for p in sys.argv[1:]] or [Path("runs/default/best.pt")]
    val = load_splits("flickr8k", Path("../shared/data/flickr8k"), None)["val"]
    cached = cached_features(get_encoder("efficientnet_lite2"), val.paths, Path("cache/features"), 2, False)
    feats = torch.from_numpy(np.array(cached)).float()
    decoders = []
    for path in checkpoints:
        decoder, vocab, _ = load_checkpoint(path)
        decoders.append(decoder.eval())
    refs = [[tokenize(c) for c in caps] for caps in val.captions]
    cider = CiderD(refs)
    runs: dict[str, list[Member]] = {f"{p}": [(d, 0)] for p, d in zip(checkpoints, decoders)}
    runs[f"{checkpoints[0]} + its mirror view"] = [(decoders[0], 0), (decoders[0], 1)]
    if len(decoders) > 1:
        runs[f"ensemble of {len(decoders)}"] = [(d, 0) for d in decoders]
    for name, members in runs.items():
        words = averaged_greedy(members, feats, vocab)
        print(f"{name}: val CIDEr-D (greedy) {cider.corpus_score(words, refs):.4f}", flush=True)


if __name__ == "__main__":
    main()
