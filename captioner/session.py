"""onnxruntime sessions: provider choice and options tuned for a big encoder and a tiny step."""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path

import onnxruntime as ort

from captioner.bundle import FLOAT, INT64, GraphInterface, interface_problem
from captioner.errors import BundleError, detail
from captioner.onnx_scan import GraphFacts, Port


class Provider(str, Enum):
    """Where the graphs run (stored and sent as its value: the CLI's --provider words).

    AUTO is a wish, resolved when a model loads; a loaded Captioner's `provider` is CPU or CUDA.
    """

    AUTO = "auto"  # CUDA when onnxruntime-gpu and a GPU are there, else the CPU
    CPU = "cpu"
    CUDA = "cuda"


PROVIDER_NAMES = {Provider.CPU: "CPUExecutionProvider", Provider.CUDA: "CUDAExecutionProvider"}


def as_provider(value: Provider | str) -> Provider:
    """A Provider from itself or its value in any case ("CPU"); BundleError for anything else."""
    text = value.value if isinstance(value, Provider) else str(value).lower()
    try:
        return Provider(text)
    except ValueError:
        raise BundleError(f"unknown provider {text!r}; choose auto, cpu or cuda") from None


def available_providers() -> list[Provider]:
    """The providers this onnxruntime build offers (CUDA, CPU)."""
    found = set(ort.get_available_providers())
    return [short for short, full in PROVIDER_NAMES.items() if full in found]


def choose_providers(preference: Provider | str = Provider.AUTO) -> list[str]:
    """onnxruntime's names for `preference`, in order; AUTO takes CUDA when onnxruntime-gpu and
    a GPU are there, else the CPU."""
    provider = as_provider(preference)
    if provider is Provider.AUTO:
        provider = Provider.CUDA if Provider.CUDA in available_providers() else Provider.CPU
    if provider not in available_providers():
        raise BundleError(f"provider {provider.value!r} is not available in this onnxruntime build")
    chosen = [PROVIDER_NAMES[provider]]
    if provider is not Provider.CPU:
        chosen.append(PROVIDER_NAMES[Provider.CPU])
    return chosen


def make_session(path: Path, providers: list[str], threads: int = 0,
                 spinning: bool = False, interface: GraphInterface | None = None
                 ) -> ort.InferenceSession:
    """An inference session; `threads` 0 means one per core.

    Spinning is off by default: waiting threads sleep instead of burning a core (measured
    faster for per-step graphs, and polite beside torch, a GUI or a loader thread).
    With `interface` (bundle.ENCODER_IO or DECODER_IO) the session's own inputs and outputs
    are checked against it, so a renamed or reshaped graph is refused at load, not mid-batch.
    """
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or (os.cpu_count() or 1)
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception as exc:  # onnxruntime raises its own opaque types
        raise BundleError(f"{path.name} cannot be loaded by onnxruntime: {detail(exc)}") from None
    if interface is not None:
        check_session(session, path, interface)
    return session


ORT_TYPES = {"tensor(float)": FLOAT, "tensor(int64)": INT64}


def session_ports(session: ort.InferenceSession) -> GraphFacts:
    """The inputs and outputs onnxruntime itself will ask for and give back."""
    def port(arg: ort.NodeArg) -> Port:
        shape = arg.shape if isinstance(arg.shape, list) else None
        dims = None if shape is None else tuple(d if isinstance(d, (int, str)) else None for d in shape)
        return Port(arg.name, ORT_TYPES.get(arg.type, 0), dims)

    return GraphFacts([port(a) for a in session.get_inputs()], [port(a) for a in session.get_outputs()])


def check_session(session: ort.InferenceSession, path: Path, interface: GraphInterface,
                  sizes: dict[str, int] | None = None) -> None:
    """BundleError when the session's ports do not fit `interface` (and `sizes`, when given:
    bundle.graph_sizes(manifest))."""
    problem = interface_problem(session_ports(session), interface, sizes or {})
    if problem:
        raise BundleError(f"{path.name} does not fit as the {interface.role}: {problem}")
