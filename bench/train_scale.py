"""Training at scale (issue 18): the RAM one rank holds once train.py's context is built, and
this machine's feature-extraction photos/s.

    python -m bench.train_scale memory -- --dataset flickr8k --data ../shared/data/flickr8k \
        --encoder efficientnet_lite2 --text ../shared/data/text \
        --pseudo-images ../shared/data/coco_unlabeled --ood ../shared/data/coco_ood \
        --min-count 10 --out /tmp/unused --no-progress
    python -m bench.train_scale features --photos 64 --data ../shared/data/flickr8k/images
    python -m bench.train_scale reads cache/features/KEY.npy [cache/features/OTHER.npy]

memory: runs `build_context` (splits, vocabulary, every feature cache, tag probabilities,
pseudo-captions) as a lone rank, with train.py's own flags after `--`, and prints the process's
private memory (RssAnon: what each rank holds alone) and its mapped file pages (RssFile: the page
cache, one copy shared by every rank of a machine and handed back under memory pressure), after
build_context and at their peak (sampled every 50 ms). The caches are read through a temporary
folder of symbolic links to --cache-dir, so a cache that is missing would be computed there,
never into --cache-dir (the bench says so: its figure would then include extraction).

features: one process (train.py's path, `training.features.extract`) computes fresh caches of the
first N photos of --data with 1 and with 2 views (photo + mirror) into a temporary folder and
prints photos/s; the backbone graph is copied from --cache-dir when there (else exported), and
loading it is timed apart.

reads: milliseconds to read a training batch (64 random photos, random views) as float32 from a
FeatureStore over the given caches (joined, the second every other row as pseudo photos are
subset), against indexing the first cache copied whole into RAM as train.py did before.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.archives import cpu_name


def status_kib(*keys: str) -> dict[str, int]:
    """Fields of /proc/self/status in KiB (Linux)."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in keys:
            out[name] = int(value.split()[0])
    return out


@dataclass
class PeakSampler:
    """The highest RssAnon and RssFile seen by a thread that reads them every 50 ms."""

    peak: dict[str, int] = field(default_factory=lambda: {"RssAnon": 0, "RssFile": 0})
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.wait(0.05):
            for key, value in status_kib("RssAnon", "RssFile").items():
                self.peak[key] = max(self.peak[key], value)


def linked_cache(cache_dir: Path, work: Path) -> Path:
    """A folder of symbolic links to every file of cache_dir: reads the real caches, writes none."""
    links = work / "cache"
    links.mkdir()
    for path in cache_dir.iterdir():
        (links / path.name).symlink_to(path.resolve())
    return links


def memory(train_args: list[str]) -> None:
    from training.train import build_context, get_args_parser

    args = get_args_parser().parse_args(train_args)
    gib = 1024 ** 2
    with tempfile.TemporaryDirectory() as tmp:
        args.cache_dir = linked_cache(args.cache_dir, Path(tmp))
        before = status_kib("RssAnon", "RssFile")
        sampler = PeakSampler()
        thread = threading.Thread(target=sampler.run, daemon=True)
        thread.start()
        start = time.perf_counter()
        ctx = build_context(args, 0, 1)
        seconds = time.perf_counter() - start
        after = status_kib("RssAnon", "RssFile")
        sampler.stop.set()
        thread.join()
        computed = [p.name for p in args.cache_dir.iterdir() if not p.is_symlink()]
    print(f"{sys.modules['training.train'].__file__}: build_context {seconds:.0f} s, "
          f"{ctx.train_feats.shape[1]} training photos x {ctx.train_feats.shape[0]} views")
    for key in ("RssAnon", "RssFile"):
        print(f"{key}: before {before[key] / gib:.2f} GiB, after {after[key] / gib:.2f} GiB, "
              f"peak {max(sampler.peak[key], after[key]) / gib:.2f} GiB")
    if computed:
        print(f"warning: caches were missing and computed: {', '.join(computed)}")


def features(data: Path, photos: int, cache_dir: Path) -> None:
    from training.encoders import get_encoder
    from training.features import Ranks, backbone_session, extract

    info = get_encoder("efficientnet_lite2")
    paths = sorted(data.glob("*.jpg"))[:photos]
    print(f"{len(paths)} photos of {data}; {cpu_name()}, {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        graph = cache_dir / f"backbone-{info.name}.onnx"
        if graph.is_file():
            shutil.copyfile(graph, work / graph.name)
        start = time.perf_counter()
        session = backbone_session(info, work, Ranks())  # exports the graph when not copied
        loaded = time.perf_counter() - start
        print(f"backbone session ({info.name}, {info.input_spec.size} px): {loaded:.2f} s")
        for views in (1, 2):
            start = time.perf_counter()
            extract(session, info, paths, views, work / f"v{views}.npy", False, "")
            seconds = time.perf_counter() - start
            rate = len(paths) / seconds
            print(f"views {views}: {len(paths)} photos in {seconds:.2f} s = {rate:.1f} photos/s")


def per_batch_ms(read: Callable[[np.random.Generator], object], repeats: int = 50) -> float:
    rng = np.random.default_rng(0)
    read(rng)  # first touch
    start = time.perf_counter()
    for _ in range(repeats):
        read(rng)
    return (time.perf_counter() - start) / repeats * 1000


def reads(caches: list[Path], batch: int = 64) -> None:
    import torch

    from training.features import FeatureStore

    arrays = [np.load(c, mmap_mode="r") for c in caches]
    store = FeatureStore.of(arrays[0])
    for extra in arrays[1:]:
        store = store.join(FeatureStore.of(extra).select(np.arange(0, extra.shape[1], 2)))
    views, rows = store.shape[:2]
    draw = lambda rng, n: (torch.from_numpy(rng.integers(views, size=batch)),
                           torch.from_numpy(rng.integers(n, size=batch)))
    mapped = per_batch_ms(lambda rng: store[draw(rng, rows)])
    whole = torch.from_numpy(np.array(arrays[0]))
    in_ram = per_batch_ms(lambda rng: whole[draw(rng, whole.shape[1])].float())
    print(f"batch of {batch} from {rows} photos x {views} views: FeatureStore over {len(caches)} "
          f"memmap(s) {mapped:.1f} ms, in-RAM tensor {in_ram:.1f} ms "
          f"(torch threads {torch.get_num_threads()})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("memory", help="RAM of build_context; train.py's flags after --")
    feats = sub.add_parser("features", help="feature extraction photos/s, one process")
    feats.add_argument("--photos", type=int, default=64)
    feats.add_argument("--data", type=Path, default=Path("../shared/data/flickr8k/images"))
    feats.add_argument("--cache-dir", type=Path, default=Path("cache/features"))
    sub.add_parser("reads", help="ms per training batch read, memmap vs RAM").add_argument(
        "caches", type=Path, nargs="+")
    args, rest = parser.parse_known_args()
    if args.what == "memory":
        memory([a for a in rest if a != "--"])
    elif args.what == "reads":
        reads(args.caches)
    else:
        features(args.data, args.photos, args.cache_dir)


if __name__ == "__main__":
    main()
