"""Run under torchrun by tests/test_training.py: every rank calls `cached_features` for the same
photo list, and records how many photos it decoded itself (its share of the work).

    python -m torch.distributed.run --nproc_per_node 2 -m tests.feature_shards LIST CACHE VIEWS
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch.distributed as dist

from training import features
from training.encoders import get_encoder


def main(listing: Path, cache_dir: Path, views: int) -> None:
    dist.init_process_group("gloo")
    ranks = features.Ranks(dist.get_rank(), dist.get_world_size(), dist.get_world_size())
    decoded: list[Path] = []
    load = features._load

    def counting_load(path: Path, info: features.EncoderInfo) -> np.ndarray:
        decoded.append(path)
        return load(path, info)

    features._load = counting_load
    paths = [Path(line) for line in listing.read_text().splitlines()]
    cache = features.cached_features(get_encoder("efficientnet_lite0"), paths, cache_dir, views,
                                     progress=False, ranks=ranks)
    (cache_dir.parent / f"rank{ranks.rank}.json").write_text(json.dumps(
        {"decoded": [str(p) for p in decoded], "shape": list(cache.shape)}))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]))
