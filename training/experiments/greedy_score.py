"""Greedy CIDEr-D of training checkpoints on a Flickr8k split, from the feature cache.

    python -m training.experiments.greedy_score runs/abl_*/last.pt --split test

The measure train.py validates with (greedy, <unk> banned, CIDEr-D), for checkpoints that were
never exported: the short ablation runs of docs/results.md. The split's features must be in
the cache (train.py or training.evaluate put them there).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from captioner.vocab import tokenize
from training.checkpoint import load_checkpoint
from training.cider import CiderD
from training.data import load_splits
from training.encoders import get_encoder
from training.features import FeatureStore, cached_features
from training.model import greedy_decode
from training.tags import build_tag_head, tag_probs


@torch.no_grad()
def greedy_words(path: Path, grid: torch.Tensor, tags: torch.Tensor | None) -> list[list[str]]:
    decoder, vocab, ckpt = load_checkpoint(path)
    words: list[list[str]] = []
    for start in range(0, len(grid), 250):
        part = tags[start:start + 250] if tags is not None and ckpt["tag_words"] else None
        tokens = greedy_decode(decoder, grid[start:start + 250], vocab.start_id, ckpt["max_length"],
                               part, banned=(vocab.pad_id, vocab.start_id, vocab.unk_id))
        words += [vocab.decode(t) for t in tokens.tolist()]
    return words


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("checkpoints", type=Path, nargs="+")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/flickr8k"))
    parser.add_argument("--split", default="test", choices=["val", "test"])
    parser.add_argument("--encoder", default="efficientnet_lite2")
    parser.add_argument("--cache-dir", type=Path, default=Path("cache/features"))
    args = parser.parse_args()
    split = load_splits("flickr8k", args.data)[args.split]
    info = get_encoder(args.encoder)
    store = FeatureStore.of(cached_features(info, split.paths, args.cache_dir, 1, progress=False))
    grid = store[0, np.arange(len(split))]
    tags = tag_probs(build_tag_head(args.encoder), store)[0]
    refs = [[tokenize(c) for c in caps] for caps in split.captions]
    cider = CiderD(refs)
    for path in args.checkpoints:
        score = cider.corpus_score(greedy_words(path, grid, tags), refs)
        print(f"{path}: {args.split} CIDEr-D (greedy) {score:.3f}")


if __name__ == "__main__":
    main()
