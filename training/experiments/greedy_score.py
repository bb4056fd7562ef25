"""Greedy CIDEr-D of training checkpoints on a Flickr8k split, from the feature cache.

    python -m training.experiments.greedy_score runs/abl_*/last.pt --split test

The measure train.py validates with (greedy, <unk> banned, CIDEr-D), for checkpoints that were
never exported: the short ablation runs of docs/results.md. The split's features must be in
the cache (train.py or training.evaluate put them there).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from captioner.vocab import tokenize
from training.checkpoint import load_checkpoint
from training.cider import CiderD
from training.data import load_splits
from training.encoders import get_encoder
from training.features import FeatureStore, cached_features
from training.tags import build_tag_head, tag_probs
from training.train import greedy_captions


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
    tags = tag_probs(build_tag_head(args.encoder), store)[0]
    refs = [[tokenize(c) for c in caps] for caps in split.captions]
    cider = CiderD(refs)
    for path in args.checkpoints:
        decoder, vocab, ckpt = load_checkpoint(path)
        words = greedy_captions(decoder, vocab, ckpt["max_length"], store,
                                tags if ckpt["tag_words"] else None)
        score = cider.corpus_score(words, refs)
        print(f"{path}: {args.split} CIDEr-D (greedy) {score:.3f}")


if __name__ == "__main__":
    main()
