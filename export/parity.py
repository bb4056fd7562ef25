"""Parity: the exported graphs must compute what the PyTorch model computes.

Features and log-probs within 1e-4 (absolute), and the same greedy tokens, on real images
preprocessed by the shared `preprocess`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from captioner.captioner import Captioner
from captioner.search import SearchConfig, beam_search
from export.to_onnx import EncoderGraph
from training.model import CaptionDecoder, greedy_decode

TOLERANCE = 1e-4


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
        return (f"parity {verdict}: {self.images} images, features max |diff| "
                f"{self.max_feature_diff:.2e}, log-probs max |diff| {self.max_logprob_diff:.2e}, "
                f"greedy tokens {'identical' if self.same_greedy_tokens else 'DIFFER'}")


@torch.no_grad()
def check_parity(backbone: nn.Module, decoder: CaptionDecoder, bundle_dir: Path,
                 batch: np.ndarray, variant: str = "fp32") -> ParityReport:
    """batch: preprocessed images (N,3,S,S). Compares torch eager with the bundle's graphs."""
    decoder.eval()
    captioner = Captioner(bundle_dir, provider="cpu", variant=variant)
    ort_out = captioner.encoder.run(None, {"image": batch})
    torch_out = EncoderGraph(backbone, decoder).eval()(torch.from_numpy(batch))
    feature_diff = max(float(np.abs(o - t.numpy()).max()) for o, t in zip(ort_out, torch_out))

    vocab = captioner.bundle.vocab
    max_len = captioner.bundle.manifest.max_length
    feats, keys, h, c = torch_out
    token = torch.full((batch.shape[0],), vocab.start_id, dtype=torch.long)
    logprob_diff = 0.0
    for _ in range(min(max_len, 8)):  # the same inputs to both, one step at a time
        o_logp = captioner._step(token.numpy(), h.numpy(), c.numpy(), feats.numpy(), keys.numpy())[0]
        logits, h, c, _ = decoder.step(token, h, c, feats, keys)
        logp = torch.log_softmax(logits, dim=1)
        logprob_diff = max(logprob_diff, float(np.abs(o_logp - logp.numpy()).max()))
        token = logp.argmax(dim=1)

    grid = backbone(torch.from_numpy(batch)).flatten(2).transpose(1, 2)
    torch_tokens = greedy_decode(decoder, grid, vocab.start_id, max_len).numpy()
    plain = SearchConfig(beam_size=1, max_length=max_len, n_best=1, block_ngram=0)
    feats_o, keys_o, h0, c0 = ort_out
    hyps = beam_search(captioner._step, feats_o, keys_o, h0, c0, vocab.start_id, vocab.end_id, plain)
    same = all(vocab.decode(t) == vocab.decode(hs[0].tokens) for t, hs in zip(torch_tokens, hyps))
    return ParityReport(feature_diff, logprob_diff, same, int(batch.shape[0]))
