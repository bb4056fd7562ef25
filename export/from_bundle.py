"""The decoder's PyTorch weights rebuilt from a bundle's fp32 ONNX graphs.

A bundle ships no checkpoint, yet every decoder weight is an initializer of encoder.onnx
(feat_proj, att_keys, init_h/init_c, attr_proj) or decoder_step.onnx (the rest), so fine-tuning
(export/finetune.py) and eager benches can start from any bundle without extra files.

torch.onnx keeps a parameter's name where it feeds a Gemm or Add ("decoder.init_h.weight",
"lstm.weight_ih"), but a Linear applied to a 3-D tensor becomes a MatMul over the transposed
weight under a generated name ("onnx::MatMul_1513"). Those are mapped by the MatMul node's
module scope ("/feat_proj/MatMul" -> feat_proj.weight, transposed), and where a graph has no
scopes, by shape and order against a fresh export of a decoder of the same size whose values are
known. Constants that constant folding derived from weights (the tag words' embedding rows)
are recomputed from the weights, not read back.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from captioner.bundle import Bundle, load_bundle
from captioner.vocab import Vocabulary
from export.to_onnx import _export, export_step
from training.model import CaptionDecoder, DecoderConfig, DecoderKind, build_decoder

PREFIX = "decoder."
GENERATED = "onnx::"  # torch.onnx's names for initializers it made (transposed, folded)
MODULES = {"feat_proj", "att_keys", "att_query", "att_score", "init_h", "init_c", "gate", "embed",
           "lstm", "out_hidden", "out_context", "out_bias", "attr_proj", "copy_gate"}


@dataclass
class GraphWeights:
    """One graph's initializers: named decoder weights, and the generated-name MatMul weights."""

    named: dict[str, np.ndarray]  # parameter name (without "decoder.") -> array
    generated: list[tuple[str, np.ndarray]]  # generated-name MatMul weights (in x out) in node
    # order, each with its node's module scope ("" where the graph has none)

    def scoped(self, modules: set[str]) -> dict[str, np.ndarray]:
        """Module name -> its MatMul weight, where the node's scope names a decoder module."""
        return {scope: w for scope, w in self.generated if scope in modules}


def read_graph(path: Path, modules: set[str] = MODULES) -> GraphWeights:
    """Sort a graph's initializers into what the decoder's parameters can be read from."""
    model = onnx.load(str(path))
    arrays = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    named = {k[len(PREFIX):]: v for k, v in arrays.items() if k.startswith(PREFIX)}
    named |= {k: v for k, v in arrays.items() if k.split(".")[0] in modules and k not in named}
    generated: list[tuple[str, np.ndarray]] = []
    for node in model.graph.node:
        if node.op_type != "MatMul" or len(node.input) < 2 or node.input[1] not in arrays:
            continue
        weight = arrays[node.input[1]]
        if weight.ndim != 2 or not node.input[1].startswith(GENERATED):
            continue  # a named weight ("decoder.x", "tag_head.to_words") is read by its name
        parts = [p for p in node.name.split("/") if p]
        if not (parts and parts[0] in ("backbone", "tag_head")):
            generated.append((parts[-2] if len(parts) >= 2 else "", weight))
    return GraphWeights(named, generated)


def infer_config(step: GraphWeights, encoder: GraphWeights, bundle: Bundle) -> DecoderConfig:
    """The decoder's sizes, read off the weights themselves (the manifest has only some)."""
    vocab_size, embed_dim = step.named["embed.weight"].shape
    hidden_size = step.named["lstm.weight_hh"].shape[1]
    attention_dim = step.named["att_query.weight"].shape[0]
    feat = encoder.scoped(MODULES).get("feat_proj")
    feature_dim = feat.shape[0] if feat is not None else _feature_dim(encoder, embed_dim)
    grid = bundle.manifest.grid
    tagged = "copy_gate.weight" in step.named
    kind = DecoderKind.UPDOWN if "lang_lstm.weight_hh" in step.named else DecoderKind.SAT
    return DecoderConfig(
        vocab_size=int(vocab_size), feature_dim=int(feature_dim), grid_size=grid[0] * grid[1],
        embed_dim=int(embed_dim), hidden_size=int(hidden_size), attention_dim=int(attention_dim),
        dropout=_dropout(bundle), tag_count=len(bundle.tag_words) if tagged else 0, kind=kind,
    )


def _feature_dim(encoder: GraphWeights, embed_dim: int) -> int:
    """Unscoped graphs: feat_proj is the first MatMul weight into the embedding size."""
    for _, weight in encoder.generated:
        if weight.shape[1] == embed_dim:
            return int(weight.shape[0])
    raise ValueError("encoder.onnx holds no feature projection")


def _dropout(bundle: Bundle) -> float:
    """The dropout the model was trained with (the training command), else the default."""
    command = bundle.manifest.training.get("command", "")
    found = re.search(r"--dropout\s+([0-9.]+)", command) if isinstance(command, str) else None
    return float(found.group(1)) if found else DecoderConfig(vocab_size=4).dropout


def _fresh_order(cfg: DecoderConfig) -> dict[str, list[tuple[str, bool]]]:
    """Which parameter (and whether transposed) each generated-name MatMul weight of a fresh
    export of this size is, per graph ("encoder"/"step"), in order; "" for derived constants."""
    fresh = build_decoder(cfg).eval()
    torch.manual_seed(0)
    with torch.no_grad():
        for p in fresh.parameters():
            p.normal_()
    if cfg.tag_count:
        fresh.set_tag_words(list(range(4, 4 + cfg.tag_count)))
    params = {k: v.numpy() for k, v in fresh.state_dict().items() if v.dtype == torch.float32}
    out: dict[str, list[tuple[str, bool]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        export_step(fresh, Path(tmp) / "step.onnx")
        _export(_EncodeHead(fresh), _encode_args(cfg), Path(tmp) / "enc.onnx",
                ["grid", "tags"] if cfg.tag_count else ["grid"], ["f", "k", "h", "c"], {})
        for kind, name in (("step", "step.onnx"), ("encoder", "enc.onnx")):
            graph = read_graph(Path(tmp) / name, set())
            out[kind] = [_which(w, params) for _, w in graph.generated]
    return out


class _EncodeHead(torch.nn.Module):
    def __init__(self, decoder: CaptionDecoder) -> None:
        super().__init__()
        self.inner = decoder

    def forward(self, grid: torch.Tensor, tags: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        return self.inner.encode(grid, tags)


def _encode_args(cfg: DecoderConfig) -> tuple[torch.Tensor, ...]:
    grid = torch.zeros(1, cfg.grid_size, cfg.feature_dim)
    return (grid, torch.full((1, cfg.tag_count), 1.0 / cfg.tag_count)) if cfg.tag_count else (grid,)


def _which(weight: np.ndarray, params: dict[str, np.ndarray]) -> tuple[str, bool]:
    for name, value in params.items():
        if value.ndim == 2 and value.T.shape == weight.shape and np.array_equal(value.T, weight):
            return name, True
        if value.shape == weight.shape and np.array_equal(value, weight):
            return name, False
    return "", False


def decoder_from_bundle(bundle_dir: Path) -> tuple[CaptionDecoder, Vocabulary, str, int]:
    """Rebuild the bundle's decoder in PyTorch: (decoder in eval mode, vocabulary, encoder
    name, max length). Raises ValueError if a weight cannot be found in the graphs."""
    bundle = load_bundle(bundle_dir)
    if "fp32" not in bundle.manifest.variants:
        raise ValueError(f"{bundle_dir} has no fp32 graphs to read the weights from")
    encoder_path, step_path = bundle.graph_paths("fp32")
    step, encoder = read_graph(step_path, MODULES), read_graph(encoder_path, MODULES)
    cfg = infer_config(step, encoder, bundle)
    decoder = build_decoder(cfg)
    state = decoder.state_dict()
    found: dict[str, np.ndarray] = {**encoder.named, **step.named}
    for graph in (encoder, step):
        found |= {f"{m}.weight": w.T for m, w in graph.scoped(MODULES).items()}
    missing = [k for k in state if k not in found and k != "tag_ids"]
    if missing:  # no scopes in these graphs: place generated-name weights by a fresh export
        fresh = _fresh_order(cfg)
        for kind, graph in (("encoder", encoder), ("step", step)):
            if len(graph.generated) != len(fresh[kind]):
                continue  # not the graph this code exports: order says nothing
            for (_, weight), (name, transposed) in zip(graph.generated, fresh[kind]):
                if name in missing:
                    found[name] = weight.T if transposed else weight
        missing = [k for k in state if k not in found and k != "tag_ids"]
    if missing:
        raise ValueError(f"{bundle_dir}: no initializer for {', '.join(missing)}")
    for key, value in state.items():
        if key == "tag_ids":
            continue
        array = found[key]
        if tuple(array.shape) != tuple(value.shape):
            raise ValueError(f"{bundle_dir}: {key} is {array.shape} in the graph, "
                             f"{tuple(value.shape)} expected")
        value.copy_(torch.from_numpy(np.array(array, dtype=np.float32)))
    if cfg.tag_count:
        decoder.set_tag_words([bundle.vocab.index[w] for w in bundle.tag_words])
    return decoder.eval(), bundle.vocab, bundle.manifest.encoder_name, bundle.manifest.max_length
