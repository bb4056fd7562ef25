"""The one class the app and the CLI use: a checked bundle, two ORT sessions, and the search."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from captioner.bundle import QUALITY, Bundle, load_bundle
from captioner.confidence import caption_signals
from captioner.errors import BundleError, CaptionerError
from captioner.images import load_image, preprocess_batch
from captioner.search import FUNCTION_WORDS, Hypothesis, SearchConfig, beam_search
from captioner.session import Provider, choose_providers, make_session
from captioner.tags import Tag, top_tags
from captioner.wording import fix_articles

log = logging.getLogger(__name__)


class Encoded(NamedTuple):
    """What the encoder graph gives per image, for the search."""

    features: np.ndarray  # (B, N, E)
    keys: np.ndarray  # (B, N, A)
    h0: np.ndarray
    c0: np.ndarray
    tags: np.ndarray | None = None  # (B, T) tag word probabilities; None for tagless bundles


@dataclass
class CaptionResult:
    text: str
    words: list[str]
    score: float  # length-normalised log-probability of the best caption
    alternatives: list[tuple[str, float]]  # n-best (text, score), best first
    attention: np.ndarray  # (len(words), grid_h, grid_w): where the model looked per word
    tags: list[Tag] = field(default_factory=list)  # what the ImageNet head sees, best first
    confidence: float | None = None  # 0-1, how likely the caption is right (None: not calibrated)


@dataclass(frozen=True)
class CaptionOptions:
    beam_size: int = 3
    max_length: int | None = None  # None: the bundle's own limit
    n_best: int = 5
    block_repeats: bool = True
    length_penalty: float | None = None  # None: the bundle's own (chosen on val)
    use_tags: bool = True  # False: the decoder is told nothing of the tags (for comparisons)


class Captioner:
    """Loads a bundle once and captions PIL images, arrays or files, in batches.

    variant "auto" takes the bundle's measured choice for this provider (on the CPU usually
    a quantized variant that keeps fp32's quality; see docs/performance.md); "fp32" forces
    the full-precision graphs. If the chosen quantized graphs cannot run here, "auto" falls
    back to fp32. `provider` is a Provider or its value ("cpu"); the attribute `provider` is
    where the graphs run: Provider.CPU or Provider.CUDA.
    """

    def __init__(self, bundle: str | Path | Bundle, provider: Provider | str = Provider.AUTO,
                 variant: str = "auto", decoder_threads: int = 1, encoder_threads: int = 0,
                 pipeline: bool = True) -> None:
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        manifest = self.bundle.manifest
        providers = choose_providers(provider)
        self.provider = Provider.CUDA if providers[0].startswith("CUDA") else Provider.CPU
        self.variant = manifest.variant_for(self.provider) if variant == "auto" else variant
        if self.variant not in manifest.variants:
            hint = (" — best quality is an ensemble of decoders built into a bundle with "
                    "python -m export.ensemble (docs/quality.md)" if self.variant == QUALITY else "")
            raise BundleError(f"bundle {manifest.name} has no {self.variant!r} variant "
                              f"(it has {', '.join(manifest.variants)}){hint}")
        self.pipeline = pipeline  # encode the next batch of files while this one decodes
        threads = (encoder_threads, decoder_threads)
        try:
            self._open(self.variant, providers, threads)
        except BundleError as exc:
            if variant != "auto" or self.variant == "fp32" or "fp32" not in manifest.variants:
                raise
            log.warning("variant %s cannot run here (%s); using fp32", self.variant, exc)
            self.variant = "fp32"
            self._open(self.variant, providers, threads)
        if self.provider is Provider.CUDA and "CUDAExecutionProvider" not in self.encoder.get_providers():
            # onnxruntime-gpu without a usable GPU runs on the CPU: take the CPU's variant
            self.provider = Provider.CPU
            if variant == "auto" and manifest.variant_for(Provider.CPU) != self.variant:
                self.variant = manifest.variant_for(Provider.CPU)
                self._open(self.variant, ["CPUExecutionProvider"], threads)

    def _open(self, variant: str, providers: list[str], threads: tuple[int, int]) -> None:
        encoder_path, decoder_path = self.bundle.graph_paths(variant)
        self.encoder = make_session(encoder_path, providers, threads=threads[0])
        self.decoder = make_session(decoder_path, providers, threads=threads[1])
        self._check_graphs()

    @property
    def name(self) -> str:
        return self.bundle.manifest.name

    @property
    def input_size(self) -> int:
        return self.bundle.manifest.input_spec.size

    def _check_graphs(self) -> None:
        """Refuse a bundle whose vocabulary or input size does not fit its graphs."""
        manifest = self.bundle.manifest
        vocab_out = self.decoder.get_outputs()[0].shape[-1]
        if isinstance(vocab_out, int) and vocab_out != len(self.bundle.vocab):
            raise BundleError(f"bundle {manifest.name}: the decoder writes {vocab_out} words but "
                              f"vocab.json has {len(self.bundle.vocab)}")
        size = self.encoder.get_inputs()[0].shape[-1]
        if isinstance(size, int) and size != manifest.input_spec.size:
            raise BundleError(f"bundle {manifest.name}: encoder expects {size} px images but the "
                              f"manifest says {manifest.input_spec.size}")

    def _step(self, token: np.ndarray, h: np.ndarray, c: np.ndarray,
              feats: np.ndarray, keys: np.ndarray, tags: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        feed = {"token": token.astype(np.int64, copy=False), "h": h, "c": c,
                "features": feats, "keys": keys}
        if tags is not None:
            feed["tags"] = tags
        out = self.decoder.run(None, feed)
        return out[0], out[1], out[2], out[3]

    @property
    def reads_tags(self) -> bool:
        """Whether the decoder step takes the tag probabilities (copy + attribute input)."""
        return any(i.name == "tags" for i in self.decoder.get_inputs())

    def search_config(self, options: CaptionOptions) -> SearchConfig:
        vocab = self.bundle.vocab
        return SearchConfig(
            beam_size=options.beam_size,
            # words allowed, plus the step that may only end the caption
            max_length=(options.max_length or self.bundle.manifest.max_length) + 1,
            n_best=max(options.n_best, 1),
            length_penalty=(self.bundle.manifest.length_penalty if options.length_penalty is None
                            else options.length_penalty),
            block_ngram=3 if options.block_repeats else 0,
            banned=(vocab.pad_id, vocab.start_id, vocab.unk_id),
            function_words=frozenset(vocab.index[w] for w in FUNCTION_WORDS if w in vocab.index),
        )

    def encode(self, batch: np.ndarray) -> Encoded:
        """Preprocessed (N,3,S,S) batch -> features, attention keys, h0, c0 (and tags)."""
        names = [o.name for o in self.encoder.get_outputs()]
        out = dict(zip(names, self.encoder.run(None, {"image": batch.astype(np.float32, copy=False)})))
        return Encoded(out["features"], out["keys"], out["h0"], out["c0"], out.get("tags"))

    def decode(self, encoded: Encoded, options: CaptionOptions | None = None) -> list[CaptionResult]:
        """Beam search over encoder outputs: one result per image."""
        vocab, options = self.bundle.vocab, options or CaptionOptions()
        extra: tuple[np.ndarray, ...] = ()
        if encoded.tags is not None and self.reads_tags:
            extra = (encoded.tags if options.use_tags else np.zeros_like(encoded.tags),)
        nbest = beam_search(self._step, encoded.features, encoded.keys, encoded.h0, encoded.c0,
                            vocab.start_id, vocab.end_id, self.search_config(options), extra)
        return [self._result(hyps, encoded, i) for i, hyps in enumerate(nbest)]

    def caption_arrays(self, batch: np.ndarray, options: CaptionOptions | None = None
                       ) -> list[CaptionResult]:
        """Preprocessed (N,3,S,S) float32 batch -> one result per image."""
        if len(batch) == 0:
            return []
        return self.decode(self.encode(batch), options)

    def _result(self, hyps: list[Hypothesis], encoded: Encoded, index: int) -> CaptionResult:
        vocab, (gh, gw) = self.bundle.vocab, self.bundle.manifest.grid
        tag_words = self.bundle.tag_words
        probs = encoded.tags[index] if encoded.tags is not None and tag_words else None
        tags = top_tags(probs, tag_words) if probs is not None else []
        if not hyps:
            return CaptionResult("", [], float("-inf"), [], np.zeros((0, gh, gw), np.float32), tags, 0.0)
        best = hyps[0]
        words = fix_articles(vocab.decode(best.tokens))
        alternatives = [(" ".join(fix_articles(vocab.decode(h.tokens))), h.score) for h in hyps]
        attention = best.alphas.reshape(len(best.tokens), gh, gw).astype(np.float32)
        confidence = None
        calibration = self.bundle.calibration
        if calibration is not None:
            photo = calibration.photo_signals(encoded.features[index].mean(axis=0))
            confidence = calibration.confidence(
                caption_signals(best.score, alternatives, words, probs, tag_words,
                                calibration.phrases, photo))
        return CaptionResult(" ".join(words), words, best.score, alternatives, attention, tags,
                             confidence)

    def caption_images(self, images: list[Image.Image], options: CaptionOptions | None = None
                       ) -> list[CaptionResult]:
        return self.caption_arrays(preprocess_batch(images, self.bundle.manifest.input_spec), options)

    def caption_files(
        self, paths: Iterable[Path], options: CaptionOptions | None = None, batch_size: int = 16,
    ) -> Iterator[tuple[Path, CaptionResult | CaptionerError]]:
        """Caption files in batches; the next batch is loaded (and, with `pipeline`, encoded)
        on a second thread while the current one is decoded.

        Yields (path, result) or (path, error) in input order; a bad file never stops the rest.
        """
        paths = list(paths)
        batches = [paths[i:i + batch_size] for i in range(0, len(paths), batch_size)]
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending: Future | None = pool.submit(self._prepare, batches[0]) if batches else None
            for index in range(len(batches)):
                assert pending is not None
                loaded, encoded = pending.result()
                pending = (pool.submit(self._prepare, batches[index + 1])
                           if index + 1 < len(batches) else None)
                yield from self._caption_loaded(loaded, encoded, options)

    def _prepare(self, paths: list[Path]) -> tuple[list[tuple[Path, np.ndarray | CaptionerError]],
                                                  Encoded | None]:
        loaded = self._load_batch(paths)
        arrays = [x for _, x in loaded if isinstance(x, np.ndarray)]
        encoded = self.encode(np.stack(arrays)) if self.pipeline and arrays else None
        return loaded, encoded

    def _load_batch(self, paths: list[Path]) -> list[tuple[Path, np.ndarray | CaptionerError]]:
        spec = self.bundle.manifest.input_spec
        loaded: list[tuple[Path, np.ndarray | CaptionerError]] = []
        for path in paths:
            try:
                image = load_image(path, draft_size=spec.size)
                loaded.append((path, preprocess_batch([image], spec)[0]))
            except CaptionerError as exc:
                loaded.append((path, exc))
        return loaded

    def _caption_loaded(self, loaded: list[tuple[Path, np.ndarray | CaptionerError]],
                        encoded: Encoded | None, options: CaptionOptions | None
                        ) -> Iterator[tuple[Path, CaptionResult | CaptionerError]]:
        arrays = [x for _, x in loaded if isinstance(x, np.ndarray)]
        if not arrays:
            results: Iterator[CaptionResult] = iter([])
        elif encoded is not None:
            results = iter(self.decode(encoded, options))
        else:
            results = iter(self.caption_arrays(np.stack(arrays), options))
        for path, item in loaded:
            yield (path, next(results)) if isinstance(item, np.ndarray) else (path, item)
