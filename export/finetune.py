"""Fine-tune a bundle on your own photos: a folder of images with the app's sidecar captions.

    python -m export.finetune --from models/default --data DIR --out models/mine \
        [--text ../shared/data/text]

DIR is a folder of photos with NAME.txt captions, or a text file listing such photos one a line
(the app hands over the photos whose captions a person saved this way).
The encoder and vocabulary are kept; words of the folder's captions that the vocabulary lacks
(seen --min-count times) get new embedding rows, started at the mean embedding and a low output
bias so that they are not written before training has placed them. The decoder's weights are
rebuilt from the bundle's own graphs (export/from_bundle.py). A held-out slice of the folder
(chosen by file-name hash) is split in two: `val` stops training early (its teacher-forced loss,
the starting model counting as epoch 0), `test` scores the source bundle and the new one through
`captioner/`, and both scores go into the new bundle's manifest. Against forgetting: a low
learning rate, early stopping, with --text caption-only batches from the text prior, and with
--replay some of the source's own training photos in every step.
The new bundle appears at --out only when it is complete (scores included): it is built in a
staging folder beside it and renamed, and an existing --out is replaced only with --overwrite.
With --progress-jsonl each stage and epoch is also one JSON line on stdout
(captioner/finetune_protocol.py), which the app reads to show progress.
Lives in export/ because it reads and writes bundles.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from captioner.bundle import Bundle, load_bundle, write_manifest
from captioner.captioner import Captioner
from captioner.errors import CaptionerError
from captioner.finetune_protocol import MIN_PHOTOS, HeldOutScores, Progress, Stage, read_photo_list
from captioner.vocab import Vocabulary, tokenize
from export.bundle_writer import ExportConfig, bundle_backbone, write_bundle
from export.from_bundle import decoder_from_bundle
from training.data import CaptionSet, TokenBatches, flickr_splits, sidecar_splits
from training.encoder_top import TunedBackbone, trunk_info
from training.encoders import get_encoder
from training.evaluate import caption_split
from training.features import cached_features
from training.metrics import coco_scores
from training.model import (
    CaptionDecoder,
    DecoderConfig,
    attention_regulariser,
    packed_targets,
)
from training.tags import build_tag_head, load_tag_table, tag_probs
from training.text_prior import LanguageBatches, SimulatedTags, read_captions, text_files


@dataclass
class FinetuneConfig:
    source: Path
    data: Path
    out: Path
    text: Path | None = None  # caption-only .txt files (token format): batches against forgetting
    text_limit: int = 20000  # text captions sampled for those batches
    lm_weight: float = 0.5
    replay: Path | None = None  # the source's training data (Flickr8k format): photos mixed in
    replay_images: int = 400  # of its training split
    replay_weight: float = 0.5
    epochs: int = 15
    patience: int = 3  # epochs without a val gain
    lr: float = 1e-4
    batch_size: int = 32
    grad_clip: float = 5.0
    alpha_c: float = 1.0
    views: int = 2  # training views per photo (2: + mirror image)
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    min_count: int = 2  # a new word must be seen this often in the folder
    max_steps: int = 0  # per epoch (0: all; tests)
    minutes: float = 10.0  # stop training after this long (0: no limit)
    beam: int = 3  # for the before/after scores
    meteor: bool = True
    quantize: bool = False
    cache_dir: Path = Path("cache/features")
    seed: int = 0
    progress: bool = True
    progress_jsonl: bool = False  # progress lines on stdout for the app
    overwrite: bool = False  # replace an existing --out


@dataclass
class Slices:
    train: CaptionSet
    val: CaptionSet
    test: CaptionSet


class TooFewPhotos(ValueError):
    """The folder has fewer captioned photos than fine-tuning needs."""


def captioned_photos(data: Path) -> dict[Path, list[str]]:
    """Photo -> its captions: a folder's images with a NAME.txt beside them, or the photos a
    list file names (one path a line) that have one."""
    if data.is_file():
        return read_photo_list(data)
    if not data.is_dir():
        raise TooFewPhotos(f"{data} is neither a folder nor a list of photos")
    seen: dict[Path, list[str]] = {}
    for split in sidecar_splits(data).values():
        seen.update(zip(split.paths, split.captions))
    return seen


def read_folder(data: Path, val_fraction: float, test_fraction: float) -> Slices:
    """Captioned photos of the folder (or list), split by file-name hash into train / val / test."""
    seen = captioned_photos(data)
    if len(seen) < MIN_PHOTOS:
        found = "no" if not seen else f"only {len(seen)}"
        raise TooFewPhotos(f"{found} captioned photos found in {data} (need at least {MIN_PHOTOS}: "
                           "images with a NAME.txt caption beside them)")

    def key(photo: Path) -> str:  # a folder's photos by their path inside it, a list's as listed
        return hashlib.sha1(str(photo.relative_to(data) if data.is_dir() else photo).encode()).hexdigest()

    order = sorted(seen, key=key)
    n_test = max(1, round(len(order) * test_fraction))
    n_val = max(1, round(len(order) * val_fraction))

    def part(paths: list[Path]) -> CaptionSet:
        return CaptionSet(sorted(paths), [seen[p] for p in sorted(paths)])

    return Slices(part(order[n_test + n_val:]), part(order[n_test:n_test + n_val]), part(order[:n_test]))


def new_words(vocab: Vocabulary, captions: list[list[str]], min_count: int) -> list[str]:
    counts = Counter(w for caps in captions for c in caps for w in tokenize(c))
    return sorted(w for w, n in counts.items() if n >= min_count and w not in vocab.index)


def grow_vocabulary(decoder: CaptionDecoder, vocab: Vocabulary, words: list[str]
                    ) -> tuple[CaptionDecoder, Vocabulary]:
    """The decoder with rows appended for `words`: embedding at the mean of the real words'
    (a neutral point the tied output scores like an average word), output bias at the 10th
    percentile (rarely written until training has moved the row). Old ids are kept."""
    if not words:
        return decoder, vocab
    cfg = DecoderConfig(**{**decoder.cfg.to_dict(), "vocab_size": len(vocab) + len(words)})
    grown = CaptionDecoder(cfg)
    state = decoder.state_dict()
    embed, bias = state["embed.weight"], state["out_bias"]
    real = embed[4:]  # past pad, start, end, unk
    state["embed.weight"] = torch.cat([embed, real.mean(dim=0, keepdim=True).repeat(len(words), 1)])
    state["out_bias"] = torch.cat([bias, torch.full((len(words),), float(bias[4:].quantile(0.1)))])
    grown.load_state_dict(state)
    return grown, Vocabulary(list(vocab.words) + words)


@dataclass
class Features:
    grid: torch.Tensor  # (views, N, P, D) float32
    tags: torch.Tensor | None  # (views, N, T)


@dataclass
class SourceEncoder:
    """The source bundle's encoder as training reads it: the registry's frozen backbone, and
    the bundle's fine-tuned last blocks when it has them (the activations that enter them are
    cached, then run through them here; the tags always come from the frozen backbone)."""

    name: str
    backbone: torch.nn.Module  # what the new bundle's encoder graph runs (bundle_backbone)

    @classmethod
    def of(cls, bundle: Bundle) -> SourceEncoder:
        return cls(bundle.manifest.encoder_name, bundle_backbone(bundle))

    @torch.no_grad()
    def decoder_grid(self, cfg: FinetuneConfig, paths: list[Path], views: int, frozen: torch.Tensor
                     ) -> torch.Tensor:
        if not isinstance(self.backbone, TunedBackbone):
            return frozen
        info = trunk_info(get_encoder(self.name), self.backbone.blocks)
        trunk = cached_features(info, paths, cfg.cache_dir, views, cfg.progress)
        grid = torch.empty_like(frozen)
        for view in range(views):
            for start in range(0, len(paths), 256):  # a few hundred photos at a time
                rows = torch.from_numpy(np.array(trunk[view, start:start + 256], dtype=np.float32))
                grid[view, start:start + len(rows)] = self.backbone.only_top(rows)
        return grid


def features(cfg: FinetuneConfig, encoder: SourceEncoder, split: CaptionSet, views: int, tagged: bool
             ) -> Features:
    info = get_encoder(encoder.name)
    frozen = torch.from_numpy(np.array(cached_features(info, split.paths, cfg.cache_dir, views,
                                                       cfg.progress), dtype=np.float32))
    tags = tag_probs(build_tag_head(encoder.name, load_tag_table()), frozen) if tagged else None
    return Features(encoder.decoder_grid(cfg, split.paths, views, frozen), tags)


@dataclass
class ValSet:
    """The early-stopping slice. Judged by its teacher-forced loss: on a few dozen photos a
    corpus CIDEr-D (document frequencies from the slice itself) jumps from epoch to epoch,
    and the loss also sees a new word's progress before greedy decoding writes it."""

    feats: Features
    batches: TokenBatches

    def loss(self, decoder: CaptionDecoder) -> float:
        decoder.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            for start in range(0, len(self.batches), 256):
                rows = np.arange(start, min(start + 256, len(self.batches)))
                images, tokens, lengths = self.batches.collate(rows)
                tags = None if self.feats.tags is None else self.feats.tags[0, images]
                logp, _, _ = decoder(self.feats.grid[0, images], tokens, lengths, tags)
                targets = packed_targets(tokens, lengths)
                total += float(F.nll_loss(logp, targets, reduction="sum"))
                count += len(targets)
        return total / max(count, 1)


def score_bundle(bundle: Path, test: CaptionSet, cfg: FinetuneConfig) -> dict[str, float]:
    """Scores of a bundle's captions (fp32, beam `cfg.beam`) on the test slice, via captioner/."""
    captioner = Captioner(bundle, provider="cpu", variant="fp32")
    captions = caption_split(captioner, test, cfg.beam)
    scores = coco_scores(test.captions, captions, meteor=cfg.meteor)
    return {k: round(v, 4) for k, v in scores.items()}


def language_batches(cfg: FinetuneConfig, vocab: Vocabulary, max_length: int,
                     tag_words: tuple[str, ...]) -> LanguageBatches | None:
    """A sample of the text prior's captions (the model's old language) for mixed batches."""
    if cfg.text is None:
        return None
    captions = [c for f in text_files(cfg.text) for c in read_captions(f)]
    if not captions:
        raise TooFewPhotos(f"no captions found in {cfg.text} (*.txt in the Flickr8k token format)")
    rng = np.random.default_rng(cfg.seed)
    picked = rng.choice(len(captions), size=min(cfg.text_limit, len(captions)), replace=False)
    # an untagged model reads no tags: simulate none (LanguageBatches cannot draw from 0 words)
    sim = None if tag_words else SimulatedTags(none_rate=1.0)
    return LanguageBatches([captions[i] for i in picked], vocab, max_length, tag_words, sim)


@dataclass
class Replay:
    """Original training photos (features and captions) drawn alongside the folder's."""

    feats: Features
    batches: TokenBatches


@dataclass
class Mix:
    """What each step adds against forgetting: text-prior rows, replayed original photos."""

    lm: LanguageBatches | None = None
    replay: Replay | None = None


def replay_set(cfg: FinetuneConfig, encoder: SourceEncoder, vocab: Vocabulary, max_length: int,
               tagged: bool) -> Replay | None:
    if cfg.replay is None:
        return None
    train = flickr_splits(cfg.replay)["train"]
    rng = np.random.default_rng(cfg.seed)
    picked = sorted(rng.choice(len(train), size=min(cfg.replay_images, len(train)), replace=False))
    split = CaptionSet([train.paths[i] for i in picked], [train.captions[i] for i in picked])
    return Replay(features(cfg, encoder, split, 1, tagged), TokenBatches(split, vocab, max_length))


def batch_loss(decoder: CaptionDecoder, feats: Features, batches: TokenBatches, rows: np.ndarray,
               rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher-forced cross-entropy of some rows (a random view each) and the attention sums."""
    images, tokens, lengths = batches.collate(rows)
    view = torch.from_numpy(rng.integers(feats.grid.shape[0], size=len(images)))
    tags = None if feats.tags is None else feats.tags[view, images]
    logp, alpha_sum, _ = decoder(feats.grid[view, images], tokens, lengths, tags)
    return F.nll_loss(logp, packed_targets(tokens, lengths)), alpha_sum


def train_epoch(decoder: CaptionDecoder, optimizer: torch.optim.Optimizer, batches: TokenBatches,
                feats: Features, mix: Mix, cfg: FinetuneConfig, rng: np.random.Generator) -> float:
    """Teacher forcing on the folder, plus the mixed-in rows each step; the folder's mean loss."""
    decoder.train()
    plan = batches.batches(cfg.batch_size, rng)
    if cfg.max_steps:
        plan = plan[: cfg.max_steps]
    half = max(cfg.batch_size // 2, 1)
    total, rows_seen = 0.0, 0
    for rows in plan:
        loss, alpha_sum = batch_loss(decoder, feats, batches, rows, rng)
        total += float(loss.detach()) * len(rows)
        loss = loss + cfg.alpha_c * attention_regulariser(alpha_sum)
        if mix.lm is not None:
            lm_tokens, lm_lengths, lm_tags = mix.lm.draw(half, rng)
            blank = feats.grid.new_zeros(len(lm_tokens), 1, feats.grid.shape[3])
            lm_logp, _, _ = decoder(blank, lm_tokens, lm_lengths, lm_tags if feats.tags is not None else None)
            loss = loss + cfg.lm_weight * F.nll_loss(lm_logp, packed_targets(lm_tokens, lm_lengths))
        if mix.replay is not None:
            old = rng.integers(len(mix.replay.batches), size=half)
            replay_loss, _ = batch_loss(decoder, mix.replay.feats, mix.replay.batches, old, rng)
            loss = loss + cfg.replay_weight * replay_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(decoder.parameters(), cfg.grad_clip)
        optimizer.step()
        rows_seen += len(rows)
    return total / max(rows_seen, 1)


def log(cfg: FinetuneConfig, message: str) -> None:
    if cfg.progress:
        print(message, file=sys.stderr, flush=True)


def report(cfg: FinetuneConfig, stage: Stage, text: str, done: float | None = None) -> None:
    """A progress line for the app on stdout (with --progress-jsonl), and the same words on
    stderr for a person."""
    if cfg.progress_jsonl:
        print(Progress(stage, text, done).line(), flush=True)
    log(cfg, text)


def staging_dir(out: Path) -> Path:
    """Where the new bundle is built before it is moved to `out` complete."""
    return out.with_name(out.name + ".finetune")


def finetune(cfg: FinetuneConfig) -> dict[str, Any]:
    """The whole run; returns what went into the new manifest's `scores["finetune"]`."""
    slices = read_folder(cfg.data, cfg.val_fraction, cfg.test_fraction)  # refuse before any work
    source = load_bundle(cfg.source)
    torch.manual_seed(cfg.seed)
    decoder, vocab, encoder_name, max_length = decoder_from_bundle(cfg.source)
    encoder = SourceEncoder.of(source)
    added = new_words(vocab, slices.train.captions, cfg.min_count)
    decoder, vocab = grow_vocabulary(decoder, vocab, added)
    report(cfg, Stage.FEATURES, f"{len(slices.train)} photos to train on, {len(slices.val)} for early "
           f"stopping, {len(slices.test)} to score; {len(added)} new words: {' '.join(added[:20])}")
    tagged = decoder.cfg.tag_count > 0
    train_feats = features(cfg, encoder, slices.train, cfg.views, tagged)
    val = ValSet(features(cfg, encoder, slices.val, 1, tagged),
                 TokenBatches(slices.val, vocab, max_length))
    mix = Mix(language_batches(cfg, vocab, max_length, source.tag_words if tagged else ()),
              replay_set(cfg, encoder, vocab, max_length, tagged))
    batches = TokenBatches(slices.train, vocab, max_length)
    optimizer = torch.optim.Adam(decoder.parameters(), lr=cfg.lr)
    best_state = {k: v.clone() for k, v in decoder.state_dict().items()}
    best = val.loss(decoder)
    history = [{"epoch": 0, "val_loss": round(best, 4)}]
    report(cfg, Stage.TRAINING, f"epoch 0 of {cfg.epochs}: val loss {best:.4f}", 0.0)
    start, bad = time.time(), 0
    for epoch in range(1, cfg.epochs + 1):
        rng = np.random.default_rng(cfg.seed * 1000 + epoch)
        loss = train_epoch(decoder, optimizer, batches, train_feats, mix, cfg, rng)
        score = val.loss(decoder)
        history.append({"epoch": epoch, "train_loss": round(loss, 4), "val_loss": round(score, 4)})
        report(cfg, Stage.TRAINING, f"epoch {epoch} of {cfg.epochs}: loss {loss:.4f}, val loss {score:.4f}",
               training_done(cfg, epoch, time.time() - start))
        if score < best:
            best, bad = score, 0
            best_state = {k: v.clone() for k, v in decoder.state_dict().items()}
        else:
            bad += 1
        if bad >= cfg.patience or (cfg.minutes and time.time() - start > cfg.minutes * 60):
            break
    decoder.load_state_dict(best_state)
    seconds = round(time.time() - start, 1)
    report(cfg, Stage.SCORING_BEFORE, f"scoring {source.manifest.name} on {len(slices.test)} held-out photos")
    before = score_bundle(cfg.source, slices.test, cfg)
    training = {"finetuned_from": str(cfg.source), "source_name": source.manifest.name,
                "data": str(cfg.data), "train_images": len(slices.train), "new_words": added,
                "history": history, "seconds": seconds,
                "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()}}
    export = ExportConfig(name=cfg.out.name, quantize=cfg.quantize,
                          parity_images=slices.val.paths[:4], training=training)
    report(cfg, Stage.EXPORTING, "exporting the new model and checking it against PyTorch")
    staging = staging_dir(cfg.out)
    write_bundle(decoder.eval(), vocab, encoder_name, max_length, staging, export, encoder.backbone)
    bundle = load_bundle(staging)
    bundle.manifest.length_penalty = source.manifest.length_penalty  # the source's decoding
    write_manifest(staging, bundle.manifest)
    report(cfg, Stage.SCORING_AFTER, f"scoring the new model on the {len(slices.test)} held-out photos")
    after = score_bundle(staging, slices.test, cfg)
    result = HeldOutScores(len(slices.test), cfg.beam, before, after).to_json()
    bundle.manifest.scores = {"finetune": result}
    write_manifest(staging, bundle.manifest)
    if cfg.out.exists():  # only with --overwrite (main refuses otherwise)
        shutil.rmtree(cfg.out)
    staging.rename(cfg.out)
    report(cfg, Stage.DONE, f"wrote {cfg.out}", 1.0)
    return result


def training_done(cfg: FinetuneConfig, epoch: int, elapsed: float) -> float:
    """How far training is: the epochs run or the time limit used, whichever is further."""
    by_time = elapsed / (cfg.minutes * 60) if cfg.minutes else 0.0
    return min(max(epoch / cfg.epochs, by_time), 1.0)


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    d = FinetuneConfig(Path(), Path(), Path())
    p.add_argument("--from", dest="source", type=Path, required=True, help="bundle to start from")
    p.add_argument("--data", type=Path, required=True, help="a folder of photos with NAME.txt "
                   "captions, or a file listing such photos one a line")
    p.add_argument("--out", type=Path, required=True, help="bundle folder to write")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--text", type=Path, help="caption-only .txt files mixed in against forgetting")
    p.add_argument("--replay", type=Path, help="the source's training data (Flickr8k format): "
                   "some of its photos are mixed in against forgetting")
    p.add_argument("--replay-images", type=int, default=d.replay_images)
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--patience", type=int, default=d.patience)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--views", type=int, default=d.views, choices=[1, 2])
    p.add_argument("--min-count", type=int, default=d.min_count, help="new words: times seen")
    p.add_argument("--max-steps", type=int, default=d.max_steps, help="per epoch (0: all)")
    p.add_argument("--minutes", type=float, default=d.minutes, help="training time limit (0: none)")
    p.add_argument("--beam", type=int, default=d.beam)
    p.add_argument("--no-meteor", dest="meteor", action="store_false")
    p.add_argument("--quantize", action="store_true", help="add the int8 variants")
    p.add_argument("--cache-dir", type=Path, default=d.cache_dir)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--quiet", dest="progress", action="store_false")
    p.add_argument("--progress-jsonl", action="store_true",
                   help="also print each stage and epoch as a JSON line on stdout (for the app)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    cfg = FinetuneConfig(**vars(args))
    if cfg.out.resolve() == cfg.source.resolve():
        print("--out must be another folder than --from", file=sys.stderr)
        return 2
    if cfg.out.exists() and not (cfg.out.is_dir() and (cfg.overwrite or not any(cfg.out.iterdir()))):
        print(f"{cfg.out} exists: pass --overwrite to replace it (a folder)", file=sys.stderr)
        return 2
    shutil.rmtree(staging_dir(cfg.out), ignore_errors=True)  # left by a killed run
    try:
        read_folder(cfg.data, cfg.val_fraction, cfg.test_fraction)
        load_bundle(cfg.source)
    except (TooFewPhotos, CaptionerError) as exc:
        print(exc, file=sys.stderr)
        return 2
    report(cfg, Stage.PREPARING, f"fine-tuning {cfg.source} on {cfg.data}")
    result = finetune(cfg)
    if not cfg.progress_jsonl:
        print(json.dumps(result, indent=1))
        print(f"wrote {cfg.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
