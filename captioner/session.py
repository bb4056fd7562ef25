"""onnxruntime sessions: provider choice and options tuned for a big encoder and a tiny step."""

from __future__ import annotations

import os
from pathlib import Path

import onnxruntime as ort

from captioner.errors import BundleError

PROVIDER_NAMES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def available_providers() -> list[str]:
    """Short names of the providers this onnxruntime build offers ("cuda", "cpu")."""
    found = set(ort.get_available_providers())
    return [short for short, full in PROVIDER_NAMES.items() if full in found]


def choose_providers(preference: str = "auto") -> list[str]:
    """'auto' takes CUDA when onnxruntime-gpu and a GPU are there, else the CPU."""
    preference = preference.lower()
    if preference == "auto":
        preference = "cuda" if "cuda" in available_providers() else "cpu"
    if preference not in PROVIDER_NAMES:
        raise BundleError(f"unknown provider {preference!r}; choose auto, cpu or cuda")
    if preference not in available_providers():
        raise BundleError(f"provider {preference!r} is not available in this onnxruntime build")
    chosen = [PROVIDER_NAMES[preference]]
    if preference != "cpu":
        chosen.append(PROVIDER_NAMES["cpu"])
    return chosen


def make_session(path: Path, providers: list[str], threads: int = 0,
                 spinning: bool = False) -> ort.InferenceSession:
    """An inference session; `threads` 0 means one per core.

    Spinning is off by default: waiting threads sleep instead of burning a core (measured
    faster for per-step graphs, and polite beside torch, a GUI or a loader thread).
    """
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or (os.cpu_count() or 1)
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception as exc:  # onnxruntime raises its own opaque types
        raise BundleError(f"{path.name} cannot be loaded by onnxruntime: {exc}") from None
