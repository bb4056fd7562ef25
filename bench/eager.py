"""The PyTorch eager reference: the training code's modules behind the ORT step's signature.

`TorchCaptioner` runs the same trained model as a bundle, straight from the training
checkpoint: the training.encoders backbone + CaptionDecoder.encode, and CaptionDecoder.step
wrapped as a numpy step function, so the very same `captioner.search.beam_search` drives
torch and onnxruntime alike. That makes the comparison about the runtimes, not the search.
Files are read the plain way: one batch after the other, no loader thread.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

from captioner.bundle import Bundle
from captioner.captioner import Captioner, CaptionOptions, CaptionResult, Encoded
from captioner.errors import CaptionerError
from captioner.images import load_image, preprocess_batch
from captioner.search import beam_search
from export.bundle_writer import tag_head_for
from export.to_onnx import EncoderGraph
from training.checkpoint import load_checkpoint
from training.encoders import get_encoder


class TorchCaptioner:
    """Captioner's interface (encode, decode, caption_arrays, caption_files) in torch eager."""

    provider = "torch"
    variant = "torch-eager"

    def __init__(self, checkpoint: Path, bundle: Bundle, device: str = "cpu") -> None:
        decoder, vocab, ckpt = load_checkpoint(checkpoint)
        if list(vocab.words) != list(bundle.vocab.words):
            raise ValueError(f"{checkpoint} is not the model of bundle {bundle.path}: vocabularies differ")
        self.device = torch.device(device)
        self.decoder = decoder.eval().to(self.device)
        self.backbone = get_encoder(ckpt["encoder"]).build().eval().to(self.device)
        # the exported encoder graph's own torch module: backbone, decoder head, tag head
        self.graph = EncoderGraph(self.backbone, self.decoder,
                                  tag_head_for(ckpt["encoder"], decoder)).eval().to(self.device)
        self.bundle = bundle
        # reuse the bundle's result formatting and search settings, not its sessions
        self._fmt = Captioner.__new__(Captioner)
        self._fmt.bundle = bundle

    @torch.no_grad()
    def encode(self, batch: np.ndarray) -> Encoded:
        out = [x.cpu().numpy() for x in self.graph(torch.from_numpy(batch).to(self.device))]
        return Encoded(*out)

    @torch.no_grad()
    def _step(self, token: np.ndarray, h: np.ndarray, c: np.ndarray, feats: np.ndarray,
              keys: np.ndarray, tags: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        dev = self.device
        logp, h_t, c_t, alpha = self.decoder.step(
            torch.from_numpy(token).to(dev), torch.from_numpy(h).to(dev), torch.from_numpy(c).to(dev),
            torch.from_numpy(feats).to(dev), torch.from_numpy(keys).to(dev),
            None if tags is None else torch.from_numpy(tags).to(dev))
        return logp.cpu().numpy(), h_t.cpu().numpy(), c_t.cpu().numpy(), alpha.cpu().numpy()

    def decode(self, encoded: Encoded, options: CaptionOptions | None = None) -> list[CaptionResult]:
        vocab, options = self.bundle.vocab, options or CaptionOptions()
        extra = (encoded.tags,) if encoded.tags is not None and self.decoder.cfg.tag_count else ()
        nbest = beam_search(self._step, encoded.features, encoded.keys, encoded.h0, encoded.c0,
                            vocab.start_id, vocab.end_id, self._fmt.search_config(options), extra)
        return [self._fmt._result(hyps, encoded, i) for i, hyps in enumerate(nbest)]

    def caption_arrays(self, batch: np.ndarray, options: CaptionOptions | None = None
                       ) -> list[CaptionResult]:
        return self.decode(self.encode(batch), options) if len(batch) else []

    def caption_files(self, paths: Iterable[Path], options: CaptionOptions | None = None,
                      batch_size: int = 16) -> Iterator[tuple[Path, CaptionResult | CaptionerError]]:
        """Load a batch (full-size decode), preprocess, caption; then the next batch."""
        paths = list(paths)
        spec = self.bundle.manifest.input_spec
        for i in range(0, len(paths), batch_size):
            loaded: list[tuple[Path, object]] = []
            for path in paths[i:i + batch_size]:
                try:
                    loaded.append((path, load_image(path)))
                except CaptionerError as exc:
                    loaded.append((path, exc))
            images = [x for _, x in loaded if not isinstance(x, CaptionerError)]
            results = iter(self.caption_arrays(preprocess_batch(images, spec), options))  # type: ignore[arg-type]
            for path, item in loaded:
                yield (path, item) if isinstance(item, CaptionerError) else (path, next(results))
