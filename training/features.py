"""Encoder features, computed once and cached on disk as fp16 (views x images x grid x dim).

The frozen backbone is exported to ONNX and run by onnxruntime (about 5x faster than eager
here) on exactly the arrays `captioner.images.preprocess` makes, the same function the app
uses. View 0 is the image itself, view 1 its mirror image (a cheap augmentation).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from captioner.images import load_image, preprocess
from captioner.session import make_session
from training.encoders import EncoderInfo

BATCH = 32


def cache_key(info: EncoderInfo, paths: list[Path], views: int) -> str:
    digest = hashlib.sha1("\n".join(str(p) for p in paths).encode()).hexdigest()[:12]
    return f"{info.name}-{info.input_spec.size}-v{views}-{digest}"


def _load(path: Path, info: EncoderInfo) -> np.ndarray:
    return preprocess(load_image(path, draft_size=info.input_spec.size), info.input_spec)


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
                    progress: bool = True) -> np.ndarray:
    """Return a read-only memmap (views, N, grid, D) fp16, computing it on first use."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = cache_key(info, paths, views)
    data_path, meta_path = cache_dir / f"{key}.npy", cache_dir / f"{key}.json"
    if meta_path.is_file():
        return np.load(data_path, mmap_mode="r")
    backbone_path = cache_dir / f"backbone-{info.name}.onnx"
    if not backbone_path.is_file():
        export_backbone(info.build(), info.input_spec.size, backbone_path)
    session = make_session(backbone_path, ["CPUExecutionProvider"])
    positions = info.grid[0] * info.grid[1]
    partial = data_path.with_suffix(".partial.npy")
    out = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float16,
                                    shape=(views, len(paths), positions, info.feature_dim))
    starts = range(0, len(paths), BATCH)
    with ThreadPoolExecutor(max_workers=1) as pool:
        loads = pool.map(lambda s: np.stack([_load(p, info) for p in paths[s:s + BATCH]]), starts)
        for start, batch in tqdm(zip(starts, loads), total=len(starts), disable=not progress,
                                 desc=f"features {info.name}"):
            for view in range(views):
                x = batch if view == 0 else np.ascontiguousarray(batch[..., ::-1])
                (grid,) = session.run(None, {"image": x})
                out[view, start:start + len(batch)] = grid.astype(np.float16)
    out.flush()
    del out
    partial.replace(data_path)
    meta_path.write_text(json.dumps({"encoder": info.name, "images": len(paths), "views": views}))
    return np.load(data_path, mmap_mode="r")
