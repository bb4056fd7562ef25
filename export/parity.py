"""Parity: the exported graphs must compute what the PyTorch model computes.

Features within 1e-4 of their size (absolute below 1, relative above: float32 sums of 1,280
channels in another order part by ~1e-6 of the values), log-probs within 1e-4 (absolute),
and the same greedy tokens, on real images
preprocessed by the shared `preprocess`. Where the greedy captions part, the two best words
must have been tied (within the tolerance) in PyTorch: an undertrained model has near-ties,
and a 1e-6 difference may then flip an argmax without anything being wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from captioner.captioner import Captioner
from captioner.search import SearchConfig, beam_search
from export.to_onnx import EncoderGraph, ExportableDecoder
from training.encoder_top import split_grids
from training.tags import TagHead

TOLERANCE = 1e-4
# log-probs more than this below the row's best are compared as that: such words (e^-12 times
# less likely than the best) are never chosen, and float32 kernels legitimately part ways in
# the far tail (the copy gate's log of a mixture of two tiny probabilities)
TAIL = 12.0


@dataclass
class ParityReport:
    max_feature_diff: float
    max_logprob_diff: float
    same_greedy_tokens: bool
    images: int

    @property
    def ok(self) -> bool:
        return (self.max_feature_diff <= TOLERANCE and self.max_logprob_diff <= TOLERANCE
                and self.same_greedy_tokens)

    def summary(self) -> str:
        verdict = "PASS" if self.ok else "FAIL"
        return (f"parity {verdict}: {self.images} images, features max |diff|/max(1, |x|) "
                f"{self.max_feature_diff:.2e}, log-probs max |diff| {self.max_logprob_diff:.2e}, "
                f"greedy tokens {'identical' if self.same_greedy_tokens else 'DIFFER'}")


def scaled_difference(found: np.ndarray, expected: np.ndarray) -> float:
    """Largest |difference| over max(1, largest |expected|): absolute for small outputs,
    relative for large ones (an ensemble's or a trained model's keys reach tens)."""
    return float(np.abs(found - expected).max()) / max(1.0, float(np.abs(expected).max()))


@torch.no_grad()
def check_parity(backbone: nn.Module, decoder: ExportableDecoder, bundle_dir: Path,
                 batch: np.ndarray, variant: str = "fp32", tag_head: TagHead | None = None
                 ) -> ParityReport:
    """batch: preprocessed images (N,3,S,S). Compares torch eager with the bundle's graphs."""
    decoder.eval()
    captioner = Captioner(bundle_dir, provider="cpu", variant=variant)
    ort_out = captioner.encoder.run(None, {"image": batch})
    torch_out = EncoderGraph(backbone, decoder, tag_head).eval()(torch.from_numpy(batch))
    feature_diff = max(scaled_difference(o, t.numpy()) for o, t in zip(ort_out, torch_out))

    vocab = captioner.bundle.vocab
    max_len = captioner.bundle.manifest.max_length
    feats, keys, h, c = torch_out[:4]
    tags = torch_out[4] if decoder.cfg.tag_count else None
    tags_np = None if tags is None else tags.numpy()
    token = torch.full((batch.shape[0],), vocab.start_id, dtype=torch.long)
    logprob_diff = 0.0
    for _ in range(min(max_len, 8)):  # the same inputs to both, one step at a time
        o_logp = captioner._step(token.numpy(), h.numpy(), c.numpy(), feats.numpy(), keys.numpy(),
                                 tags_np)[0]
        logp, h, c, _ = decoder.step(token, h, c, feats, keys, tags)
        floor = logp.numpy().max(axis=1, keepdims=True) - TAIL
        both = np.maximum(o_logp, floor), np.maximum(logp.numpy(), floor)
        logprob_diff = max(logprob_diff, float(np.abs(both[0] - both[1]).max()))
        token = logp.argmax(dim=1)

    grid = split_grids(backbone(torch.from_numpy(batch)))[0].flatten(2).transpose(1, 2)
    torch_tokens, margins = greedy_with_margins(decoder, grid, vocab.start_id, max_len, tags)
    plain = SearchConfig(beam_size=1, max_length=max_len, n_best=1, block_ngram=0)
    feats_o, keys_o, h0, c0 = ort_out[:4]
    extra = (ort_out[4],) if tags is not None else ()
    hyps = beam_search(captioner._step, feats_o, keys_o, h0, c0, vocab.start_id, vocab.end_id, plain,
                       extra)
    same = all(bool(hs) and _agree(t.tolist(), hs[0].tokens, m, vocab.end_id)  # none: NaN scores
               for t, hs, m in zip(torch_tokens, hyps, margins))
    return ParityReport(feature_diff, logprob_diff, same, int(batch.shape[0]))


@torch.no_grad()
def greedy_with_margins(decoder: ExportableDecoder, grid: torch.Tensor, start_id: int, max_len: int,
                        tags: torch.Tensor | None) -> tuple[np.ndarray, np.ndarray]:
    """Greedy tokens (B, L) and, per step, the log-prob gap between the best two words (one
    pass: training.model.greedy_decode's loop with the gap kept, for any exportable decoder)."""
    feats, keys, h, c = decoder.encode(grid, tags)
    token = torch.full((grid.shape[0],), start_id, dtype=torch.long)
    tokens, margins = [], []
    for _ in range(max_len):
        logp, h, c, _ = decoder.step(token, h, c, feats, keys, tags)
        top2 = logp.topk(2, dim=1)
        margins.append(top2.values[:, 0] - top2.values[:, 1])
        token = top2.indices[:, 0]
        tokens.append(token)
    return torch.stack(tokens, dim=1).numpy(), torch.stack(margins, dim=1).numpy()


def _agree(torch_seq: list[int], ort_words: list[int], margins: np.ndarray, end_id: int) -> bool:
    """Same caption, or the first word where they part was a near-tie in PyTorch. (The search
    must end a caption at its last step, so a caption at the length limit ends there.)"""
    ort_seq = [*ort_words, end_id]
    for t, (a, b) in enumerate(zip(torch_seq, ort_seq)):
        if t == len(torch_seq) - 1 and b == end_id:
            return True
        if a != b:
            return bool(margins[t] <= TOLERANCE)
        if a == end_id:
            return True
    return True
