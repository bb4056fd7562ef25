"""Encoder features, computed once and cached on disk as fp16 (views x images x grid x dim).

The frozen backbone is exported to ONNX and run by onnxruntime (about 5x faster than eager
here) on exactly the arrays `captioner.images.preprocess` makes, the same function the app
uses. View 0 is the image itself, view 1 its mirror image (a cheap augmentation).

Under torchrun each rank computes its own slice of a missing cache (`Ranks`), and training
reads the cache through `FeatureStore`, which keeps it memory-mapped: a batch is read from
disk (or the page cache, shared by every rank of a machine) when it is needed, so RAM per rank
does not grow with the dataset.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import torch.distributed as dist
from tqdm import tqdm

from captioner.images import load_image, preprocess
from captioner.session import make_session
from training.encoders import EncoderInfo

BATCH = 32
JOIN_ROWS = 256  # images copied at a time when rank 0 joins the ranks' parts (~100 MB for Lite2)


def cache_key(info: EncoderInfo, paths: list[Path], views: int) -> str:
    digest = hashlib.sha1("\n".join(str(p) for p in paths).encode()).hexdigest()[:12]
    return f"{info.name}-{info.input_spec.size}-v{views}-{digest}"


def _load(path: Path, info: EncoderInfo) -> np.ndarray:
    return preprocess(load_image(path, draft_size=info.input_spec.size), info.input_spec)


@dataclass(frozen=True)
class Ranks:
    """This process among the torchrun processes that share the feature work (alone: 0 of 1).

    Every rank must call `cached_features` with the same arguments in the same order: the
    call is collective (barriers), as a torch.distributed collective is.
    """

    rank: int = 0
    world: int = 1
    per_node: int = 1  # processes on this machine (torchrun's LOCAL_WORLD_SIZE): they share its cores

    def share(self, n: int) -> range:
        """This rank's contiguous slice of n images; the ranks' slices are disjoint, in order,
        and cover all n, so the joined parts are the cache one process would write."""
        return range(n * self.rank // self.world, n * (self.rank + 1) // self.world)

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def all_true(self, value: bool) -> bool:
        """True only when every rank says so: all ranks then take the same branch."""
        if self.world == 1:
            return value
        flag = torch.tensor([int(value)])
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item())

    def part_path(self, data_path: Path) -> Path:
        """Where this rank writes its slice; alone, the `.partial.npy` that becomes the cache."""
        if self.world == 1:
            return data_path.with_suffix(".partial.npy")
        return data_path.with_suffix(f".part{self.rank}of{self.world}.npy")


class BackboneGraph(torch.nn.Module):
    """Backbone alone, (B,3,S,S) -> (B,N,D): what the feature cache holds."""

    def __init__(self, backbone: torch.nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.backbone(image).flatten(2).transpose(1, 2)


def export_backbone(backbone: torch.nn.Module, image_size: int, path: Path) -> None:
    """The frozen backbone as an ONNX graph: onnxruntime computes the cache ~5x faster than eager."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(BackboneGraph(backbone).eval(), (torch.zeros(1, 3, image_size, image_size),),
                          str(path), dynamo=False, opset_version=17, input_names=["image"],
                          output_names=["grid"], dynamic_axes={"image": {0: "batch"}, "grid": {0: "batch"}})


def cached_features(info: EncoderInfo, paths: list[Path], cache_dir: Path, views: int = 1,
                    progress: bool = True, ranks: Ranks = Ranks()) -> np.ndarray:
    """Return a read-only memmap (views, N, grid, D) fp16, computing it on first use.

    With several ranks each computes `ranks.share(N)` into its own part file, then rank 0 joins
    the parts into the same file one process writes (same key, same bytes layout), and every
    rank opens it. The cache folder must be one that all ranks see (one machine, or a shared
    filesystem across machines).
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = cache_key(info, paths, views)
    data_path, meta_path = cache_dir / f"{key}.npy", cache_dir / f"{key}.json"
    if not ranks.all_true(meta_path.is_file()):
        session = backbone_session(info, cache_dir, ranks)
        share = ranks.share(len(paths))
        extract(session, info, paths[share.start:share.stop], views, ranks.part_path(data_path),
                progress, f"features {info.name}" + (f" rank {ranks.rank}" if ranks.world > 1 else ""))
        ranks.barrier()
        if ranks.rank == 0:
            join_parts([Ranks(r, ranks.world).part_path(data_path) for r in range(ranks.world)], data_path)
            meta_path.write_text(json.dumps({"encoder": info.name, "images": len(paths), "views": views}))
        ranks.barrier()
    return np.load(data_path, mmap_mode="r")


def backbone_session(info: EncoderInfo, cache_dir: Path, ranks: Ranks) -> ort.InferenceSession:
    """The backbone's onnxruntime session, exported once (by rank 0, while the others wait);
    the ranks of one machine split its cores between them instead of each taking them all."""
    path = cache_dir / f"backbone-{info.name}.onnx"
    if ranks.rank == 0 and not path.is_file():
        export_backbone(info.build(), info.input_spec.size, path)
    ranks.barrier()
    threads = max(1, (os.cpu_count() or 1) // ranks.per_node)
    return make_session(path, ["CPUExecutionProvider"], threads=threads)


def extract(session: ort.InferenceSession, info: EncoderInfo, paths: list[Path], views: int,
            out_path: Path, progress: bool, desc: str) -> None:
    """Features of `paths` into a new .npy at out_path; the next batch's photos are decoded on
    a thread while the backbone runs."""
    out = np.lib.format.open_memmap(out_path, mode="w+", dtype=np.float16,
                                    shape=(views, len(paths), info.grid[0] * info.grid[1], info.feature_dim))
    starts = range(0, len(paths), BATCH)
    with ThreadPoolExecutor(max_workers=1) as pool:
        loads = pool.map(lambda s: np.stack([_load(p, info) for p in paths[s:s + BATCH]]), starts)
        for start, batch in tqdm(zip(starts, loads), total=len(starts), disable=not progress, desc=desc):
            for view in range(views):
                x = batch if view == 0 else np.ascontiguousarray(batch[..., ::-1])
                (grid,) = session.run(None, {"image": x})
                out[view, start:start + len(batch)] = grid.astype(np.float16)
    out.flush()


def join_parts(parts: list[Path], data_path: Path) -> None:
    """The ranks' parts, in rank order, become the cache file (a lone part is just renamed);
    copied a few hundred images at a time, so joining needs little RAM."""
    if len(parts) == 1:
        parts[0].replace(data_path)
        return
    arrays = [np.load(p, mmap_mode="r") for p in parts]
    views, _, positions, dim = arrays[0].shape
    partial = data_path.with_suffix(".partial.npy")
    out = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float16,
                                    shape=(views, sum(a.shape[1] for a in arrays), positions, dim))
    offset = 0
    for array in arrays:
        for start in range(0, array.shape[1], JOIN_ROWS):
            rows = array[:, start:start + JOIN_ROWS]
            out[:, offset + start:offset + start + rows.shape[1]] = rows
        offset += array.shape[1]
    out.flush()
    del out, arrays
    partial.replace(data_path)
    for part in parts:
        part.unlink()


Rows = slice | np.ndarray | torch.Tensor


@dataclass(frozen=True)
class FeatureStore:
    """Cached features (views, N, grid, D) that stay memory-mapped: `store[views, rows]` reads
    only that batch, as float32. Caches are joined and subset without copying (Flickr8k's
    photos then the pseudo-captioned ones), so a rank holds no copy of the cache in its RAM.
    """

    arrays: tuple[np.ndarray, ...]  # (views, n_i, grid, D) fp16 each, np.memmap from the cache
    index: np.ndarray | None = None  # (N,) rows of the arrays end to end; None: all, in order

    @classmethod
    def of(cls, array: np.ndarray) -> FeatureStore:
        return cls((array,))

    @property
    def shape(self) -> tuple[int, int, int, int]:
        views, _, positions, dim = self.arrays[0].shape
        rows = self._total() if self.index is None else len(self.index)
        return views, rows, positions, dim

    def _total(self) -> int:
        return sum(a.shape[1] for a in self.arrays)

    def _flat(self, rows: np.ndarray) -> np.ndarray:
        """Positions of store rows in the arrays laid end to end."""
        return rows if self.index is None else self.index[rows]

    def _checked(self, rows: Rows) -> np.ndarray:
        """Rows as int64 positions, refused when outside the store (never read past the arrays)."""
        if isinstance(rows, slice):
            return np.arange(*rows.indices(self.shape[1]))
        out = np.asarray(rows, dtype=np.int64)
        if out.size and (out.min() < 0 or out.max() >= self.shape[1]):
            raise IndexError(f"rows {out.min()}..{out.max()} outside a store of {self.shape[1]}")
        return out

    def select(self, rows: np.ndarray) -> FeatureStore:
        """Only these rows, in this order."""
        return FeatureStore(self.arrays, self._flat(self._checked(rows)))

    def join(self, other: FeatureStore) -> FeatureStore:
        """This store's rows, then the other's."""
        if self.index is None and other.index is None:
            return FeatureStore(self.arrays + other.arrays)
        every = np.arange(self.shape[1])
        index = np.concatenate([self._flat(every), other._flat(np.arange(other.shape[1])) + self._total()])
        return FeatureStore(self.arrays + other.arrays, index)

    def __getitem__(self, key: tuple[int | np.ndarray | torch.Tensor, Rows]) -> torch.Tensor:
        """(B, grid, D) float32 for views[i], rows[i] (a view may be one int for all rows)."""
        views, rows = key
        flat = self._flat(self._checked(rows))
        view = np.broadcast_to(np.asarray(views, dtype=np.int64), flat.shape)
        starts = np.cumsum([0] + [a.shape[1] for a in self.arrays])
        which = np.searchsorted(starts, flat, side="right") - 1
        out = np.empty((len(flat), *self.shape[2:]), dtype=self.arrays[0].dtype)
        for k, array in enumerate(self.arrays):
            mine = which == k
            if mine.any():
                out[mine] = array[view[mine], flat[mine] - starts[k]]
        return torch.from_numpy(out).float()  # torch widens fp16 ~3x faster than numpy here
