"""Train a captioner from a dataset to a finished, exported, evaluated bundle.

    python -m training.train --dataset flickr8k --data ../shared/data/flickr8k \
        --encoder efficientnet_lite2 --out models/default --scst-epochs 5

Laid out like torchvision's references/classification/train.py: get_args_parser,
train_one_epoch, evaluate, main. The backbone is frozen: its features are computed once and
cached; the decoder trains on them with teacher forcing (cross-entropy + doubly stochastic
attention), then optionally with self-critical sequence training (CIDEr-D reward, greedy
baseline). A checkpoint is written every epoch; --resume continues from it. Under torchrun the
same script trains with DistributedDataParallel (gloo: the decoder trains on the CPU); the ranks
share the feature extraction and read the cache memory-mapped (docs/scale.md).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from captioner.vocab import Vocabulary, tokenize
from training.cider import CiderD
from training.data import CaptionSet, TokenBatches, download_flickr8k, folder_split, load_splits
from training.encoder_top import TokenTop, make_top, trunk_info
from training.encoders import EncoderInfo, available_encoders, get_encoder
from training.features import FeatureStore, Ranks, cached_features
from training.model import (
    CaptionDecoder,
    DecoderConfig,
    DecoderKind,
    attention_regulariser,
    build_decoder,
    greedy_decode,
    packed_targets,
    sample_decode,
)
from training.pseudo import retrieve, teacher_captioned, unlabeled_photos
from training.tags import TagHead, build_tag_head, load_tag_table, tag_probs
from training.text_prior import LanguageBatches, caption_vocabulary, read_captions, text_files

END = "<end>"  # the end token as a word of the SCST reward (see `ended`)


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dataset", default="flickr8k", choices=["flickr8k", "coco", "sidecar"])
    p.add_argument("--data", type=Path, required=True, help="dataset folder")
    p.add_argument("--annotations", type=Path, help="COCO caption JSON (with --dataset coco)")
    p.add_argument("--download", action="store_true", help="fetch Flickr8k into --data (online)")
    p.add_argument("--encoder", default="efficientnet_lite0", choices=available_encoders())
    p.add_argument("--tags", action=argparse.BooleanOptionalAction, default=True,
                   help="feed the encoder's ImageNet tags to the decoder (copy + attribute)")
    p.add_argument("--text", type=Path, help="folder of caption-only .txt files: vocabulary and "
                   "language-model batches mixed into training")
    p.add_argument("--lm-weight", type=float, default=0.5, help="weight of the caption-only loss")
    p.add_argument("--pseudo-images", type=Path, help="unlabeled photos given pseudo-captions "
                   "retrieved from --text by their tags")
    p.add_argument("--teacher-captions", type=Path, help="`captioner caption --json` output of a "
                   "stronger model on --pseudo-images photos: the sure ones join training (self-training)")
    p.add_argument("--teacher-min-confidence", type=float, default=0.6,
                   help="a teacher caption joins when its confidence is at least this (the app's 'sure')")
    p.add_argument("--ood", type=Path, help="extra dev set (images/ + captions.txt) scored every "
                   "epoch; the checkpoint kept is best on the mean of both dev CIDEr-Ds (the "
                   "learning rate and patience follow the dataset's own val split alone)")
    p.add_argument("--out", type=Path, required=True, help="bundle folder to write")
    p.add_argument("--workdir", type=Path, help="checkpoints and logs (default runs/<out name>)")
    p.add_argument("--cache-dir", type=Path, default=Path("cache/features"))
    p.add_argument("--views", type=int, default=2, choices=[1, 2], help="views per image (2 = + mirror)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=4e-4)
    p.add_argument("--alpha-c", type=float, default=1.0, help="attention regulariser weight")
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--grad-clip", type=float, default=5.0)
    p.add_argument("--patience", type=int, default=3, help="epochs without val CIDEr gain")
    p.add_argument("--max-length", type=int, default=20, help="words per caption")
    p.add_argument("--min-count", type=int, default=5, help="vocabulary: minimum word count")
    p.add_argument("--embed-dim", type=int, default=512)
    p.add_argument("--hidden-size", type=int, default=512)
    p.add_argument("--attention-dim", type=int, default=512)
    p.add_argument("--decoder", default=DecoderKind.SAT.value, choices=[k.value for k in DecoderKind],
                   help="sat: Show, Attend and Tell; updown: Up-Down's two LSTMs (Anderson et al. 2018)")
    p.add_argument("--tune-blocks", type=int, default=0, help="also fine-tune the encoder's last N "
                   "blocks and head conv (EfficientNet-Lite) on cached activations; 0 = frozen")
    p.add_argument("--tune-lr", type=float, default=1e-4, help="learning rate of the tuned blocks")
    p.add_argument("--init", type=Path, help="start from this checkpoint's weights (decoder, and "
                   "tuned blocks if it has them) with a fresh optimizer and schedule")
    p.add_argument("--scst-epochs", type=int, default=0)
    p.add_argument("--scst-lr", type=float, default=2e-5)
    p.add_argument("--scst-samples", type=int, default=5)
    p.add_argument("--scst-batch", type=int, default=50, help="images per SCST batch")
    p.add_argument("--scst-images", type=int, default=0, help="images per SCST epoch (0 = all)")
    p.add_argument("--scst-pseudo-share", type=float, help="share of each SCST epoch's images drawn "
                   "from the --pseudo-images photos (default: their share of the training photos)")
    p.add_argument("--val-images", type=int, default=0, help="limit validation (0 = all)")
    p.add_argument("--bf16", choices=["auto", "on", "off"], default="auto")
    p.add_argument("--resume", action="store_true", help="continue from <workdir>/last.pt")
    p.add_argument("--max-steps", type=int, default=0, help="stop each epoch early (tests)")
    p.add_argument("--eval-beams", type=int, nargs="*", default=[1, 3, 5])
    p.add_argument("--no-export", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    return p


@dataclass
class Context:
    """What every stage needs: data, features, vocabulary and the distributed rank."""

    args: argparse.Namespace
    splits: dict[str, CaptionSet]
    vocab: Vocabulary
    train_feats: FeatureStore  # (views, N, positions, dim), memory-mapped: what `feed` reads
    val_feats: FeatureStore
    val_refs: list[list[list[str]]]
    train_refs: list[list[list[str]]]
    tags: TagData | None = None
    lm: LanguageBatches | None = None
    ood: DevSet | None = None
    pseudo_count: int = 0  # the last pseudo_count training photos are pseudo-captioned ones
    rank: int = 0
    world: int = 1
    autocast: bool = False
    top: TokenTop | None = None  # the encoder's tuned last blocks (--tune-blocks); None: frozen
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def feed(self, stored: torch.Tensor) -> torch.Tensor:
        """Cached rows -> the decoder's grid: the stored features themselves, or, with tuned
        blocks, the trunk's cached activations through them."""
        return stored if self.top is None else self.top(stored)

    def trainable(self, model: torch.nn.Module) -> list[torch.nn.Parameter]:
        return list(model.parameters()) + ([] if self.top is None else list(self.top.parameters()))

    @cached_property
    def scst_refs(self) -> list[list[list[str]]]:
        """The training references with <end> as their last word (the SCST reward's)."""
        return [[ref + [END] for ref in refs] for refs in self.train_refs]


@dataclass
class TagData:
    """Tag words and the tag probabilities of every cached view (views, N, T)."""

    words: tuple[str, ...]
    train: torch.Tensor
    val: torch.Tensor


@dataclass
class DevSet:
    """An extra scored split (features of one view, tags, tokenised references)."""

    feats: FeatureStore  # (1, N, positions, dim): what Context.feed reads
    tags: torch.Tensor | None
    refs: list[list[list[str]]]


@dataclass
class RunState:
    """Where training stands; saved in every checkpoint so that --resume continues from it."""

    epoch: int = 0  # epochs completed (cross-entropy and SCST counted together)
    stage: str = "xe"  # "xe" (teacher forcing), then "scst"
    best_cider: float = -1.0  # best Flickr8k-style val CIDEr-D so far: drives lr and patience
    bad_epochs: int = 0  # epochs since it last improved
    best_select: float = -1.0  # best checkpoint score (with --ood, the mean of both dev sets)


def bare(model: torch.nn.Module) -> CaptionDecoder:
    """The decoder itself, also when wrapped in DistributedDataParallel."""
    return cast(CaptionDecoder, getattr(model, "module", model))


def use_bf16(choice: str) -> bool:
    if choice != "auto":
        return choice == "on"
    return "AVX512" in torch.backends.cpu.get_cpu_capability() and not torch.cuda.is_available()


def train_one_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batches: TokenBatches,
                    ctx: Context, epoch: int, rng: np.random.Generator) -> dict[str, float]:
    """Teacher-forced cross-entropy plus the doubly stochastic attention regulariser."""
    model.train()
    args, start, seen, loss_sum = ctx.args, time.time(), 0, 0.0
    plan = batches.batches(args.batch_size, rng, ctx.rank, ctx.world)
    if args.max_steps:
        plan = plan[: args.max_steps]
    bar = tqdm(plan, desc=f"epoch {epoch}", disable=args.no_progress or not ctx.is_main)
    for rows in bar:
        images, tokens, lengths = batches.collate(rows)
        view = torch.from_numpy(rng.integers(ctx.train_feats.shape[0], size=len(images)))
        tags = ctx.tags.train[view, images] if ctx.tags else None
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=ctx.autocast):
            grid = ctx.feed(ctx.train_feats[view, images])
            logp, alpha_sum, _ = model(grid, tokens, lengths, tags)
        loss = F.nll_loss(logp.float(), packed_targets(tokens, lengths))
        loss = loss + args.alpha_c * attention_regulariser(alpha_sum)
        if ctx.lm is not None:
            loss = loss + args.lm_weight * language_loss(model, ctx, grid, rng)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(ctx.trainable(model), args.grad_clip)
        optimizer.step()
        seen += len(rows)
        loss_sum += float(loss.detach()) * len(rows)
        bar.set_postfix(loss=f"{float(loss.detach()):.3f}", caps_s=f"{seen / (time.time() - start):.0f}")
    elapsed = time.time() - start
    return {"train_loss": loss_sum / max(seen, 1), "captions_per_s": seen * ctx.world / elapsed,
            "seconds": elapsed}


def language_loss(model: torch.nn.Module, ctx: Context, grid: torch.Tensor,
                  rng: np.random.Generator) -> torch.Tensor:
    """Cross-entropy of a batch of caption-only rows, read over a blank image."""
    assert ctx.lm is not None
    tokens, lengths, tags = ctx.lm.draw(ctx.args.batch_size // 2, rng)
    blank = grid.new_zeros(len(tokens), 1, grid.shape[2])  # one blank cell of the decoder's input
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=ctx.autocast):
        logp, _, _ = model(blank, tokens, lengths, tags if ctx.tags else None)
    return F.nll_loss(logp.float(), packed_targets(tokens, lengths))


def scst_order(total: int, pseudo_count: int, size: int, share: float | None,
               rng: np.random.Generator) -> np.ndarray:
    """The training photos of one SCST epoch, shuffled: `size` of the `total` (all when 0), of
    which `share` are pseudo-captioned ones (the last `pseudo_count`: everyday photos whose
    references are COCO captions, the reward that teaches everyday scenes in COCO's words);
    share None draws them in proportion."""
    size = min(size or total, total)
    if share is None or not pseudo_count:
        return rng.permutation(total)[:size]
    paired = total - pseudo_count
    n_pseudo = min(round(size * share), pseudo_count)
    picked = np.concatenate([rng.permutation(paired)[: size - n_pseudo],
                             paired + rng.permutation(pseudo_count)[:n_pseudo]])
    return rng.permutation(picked)


def scst_one_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, ctx: Context,
                   cider: CiderD, epoch: int, rng: np.random.Generator) -> dict[str, float]:
    """Self-critical sequence training with a CIDEr-D reward.

    Each image gets n sampled captions; the baseline of a sample is the mean reward of the
    image's other samples (Luo 2020: lower variance than the greedy baseline and no extra
    decoding pass). Samples are drawn with dropout off, as the captions are decoded at test
    time, and the policy-gradient loss is averaged per token. --scst-images caps the images
    per epoch so that checkpoints and validation come often on a slow machine.
    """
    args, vocab = ctx.args, ctx.vocab
    decoder = bare(model)
    order = scst_order(ctx.train_feats.shape[1], ctx.pseudo_count, args.scst_images,
                       args.scst_pseudo_share, rng)
    plan = [order[i:i + args.scst_batch] for i in range(0, len(order), args.scst_batch)]
    plan = plan[ctx.rank: len(plan) - len(plan) % ctx.world: ctx.world]
    if args.max_steps:
        plan = plan[: args.max_steps]
    n = max(args.scst_samples, 2)
    start, reward_sum, count = time.time(), 0.0, 0
    banned = [vocab.pad_id, vocab.start_id]  # <unk> may be drawn: its low reward pushes it down
    decoder.eval()
    bar = tqdm(plan, desc=f"scst {epoch}", disable=args.no_progress or not ctx.is_main)
    for images in bar:
        view = torch.from_numpy(rng.integers(ctx.train_feats.shape[0], size=len(images)))
        tags = ctx.tags.train[view, torch.from_numpy(images)] if ctx.tags else None
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=ctx.autocast):
            grid = ctx.feed(ctx.train_feats[view, images])
            tokens, logprob, counts = sample_decode(decoder, grid, vocab.start_id, vocab.end_id,
                                                    args.max_length, n, banned, tags)
        rewards = np.array([cider.score(ended(t, vocab), ctx.scst_refs[images[i // n]])
                            for i, t in enumerate(tokens.tolist())]).reshape(-1, n)
        baseline = (rewards.sum(axis=1, keepdims=True) - rewards) / (n - 1)
        advantage = torch.from_numpy((rewards - baseline).reshape(-1)).float()
        loss = -(advantage * logprob).sum() / counts.sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if hasattr(model, "module"):  # sample_decode ran on the bare module: sync by hand
            for param in model.parameters():
                if param.grad is not None:
                    dist.all_reduce(param.grad)
                    param.grad /= ctx.world
        torch.nn.utils.clip_grad_norm_(ctx.trainable(model), args.grad_clip)
        optimizer.step()
        reward_sum += float(rewards.mean()) * len(images)
        count += len(images)
        bar.set_postfix(reward=f"{reward_sum / count:.3f}")
    elapsed = time.time() - start
    return {"train_loss": -reward_sum / max(count, 1), "sample_reward": reward_sum / max(count, 1),
            "captions_per_s": count * n * ctx.world / elapsed, "seconds": elapsed}


def ended(tokens: list[int], vocab: Vocabulary) -> list[str]:
    """A sampled caption's words, with <end> when it finished: the SCST reward counts the end
    token as a word (references get it too), so that a caption cut off after "a red and a"
    loses the n-grams a finished one earns, the known bad-endings failure of CIDEr-D SCST."""
    return vocab.decode(tokens) + ([END] if vocab.end_id in tokens else [])


@torch.no_grad()
def evaluate(model: torch.nn.Module, ctx: Context, cider: CiderD) -> dict[str, float]:
    """Greedy captions of the validation images, scored with CIDEr-D."""
    decoder = bare(model)
    decoder.eval()
    words = greedy_captions(decoder, ctx.vocab, ctx.args.max_length, ctx.val_feats,
                            ctx.tags.val[0] if ctx.tags else None, ctx.feed)
    texts = [" ".join(w) for w in words]
    out = {"val_cider": cider.corpus_score(words, ctx.val_refs),
           "val_distinct": len(set(texts)) / max(len(texts), 1)}
    if ctx.ood is not None:
        ood_words = greedy_captions(decoder, ctx.vocab, ctx.args.max_length, ctx.ood.feats,
                                     ctx.ood.tags, ctx.feed)
        out["ood_cider"] = CiderD(ctx.ood.refs).corpus_score(ood_words, ctx.ood.refs)
    out["select"] = (out["val_cider"] + out["ood_cider"]) / 2 if ctx.ood else out["val_cider"]
    return out


def greedy_captions(decoder: CaptionDecoder, vocab: Vocabulary, max_length: int,
                    feats: FeatureStore, tags: torch.Tensor | None,
                    feed: Callable[[torch.Tensor], torch.Tensor] = lambda x: x) -> list[list[str]]:
    """Greedy captions of view 0 (the photo itself), 250 photos read from the cache at a time
    (and through `feed`, the tuned blocks if any), <unk> never written (as in the app): the
    validation measure."""
    words = []
    for start in range(0, feats.shape[1], 250):
        grid = feed(feats[0, start:start + 250])
        part = None if tags is None else tags[start:start + 250]
        tokens = greedy_decode(decoder, grid, vocab.start_id, max_length, part,
                               banned=(vocab.pad_id, vocab.start_id, vocab.unk_id))
        words += [vocab.decode(t) for t in tokens.tolist()]
    return words


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    ctx: Context, state: RunState) -> None:
    decoder = bare(model)
    payload = {
        "model": decoder.state_dict(), "optimizer": optimizer.state_dict(),
        "decoder_config": decoder.cfg.to_dict(), "vocab": ctx.vocab.words,
        "encoder": ctx.args.encoder, "max_length": ctx.args.max_length,
        "tag_words": list(ctx.tags.words) if ctx.tags else [],
        "history": ctx.history, "training": training_info(ctx), **asdict(state),
    }
    if ctx.top is not None:
        payload |= {"encoder_top": ctx.top.state_dict(), "tune_blocks": ctx.args.tune_blocks}
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def training_info(ctx: Context) -> dict[str, Any]:
    a = ctx.args
    return {
        "dataset": a.dataset, "data": str(a.data), "encoder": a.encoder,
        "train_images": len(ctx.splits["train"]), "vocab_min_count": a.min_count,
        "command": "python -m training.train " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in sorted(vars(a).items())
            if v not in (None, False, True) and k not in ("workdir", "cache_dir", "resume")
            and not isinstance(v, list)),
    }


def log_epoch(workdir: Path, ctx: Context, row: dict[str, Any]) -> None:
    ctx.history.append(row)
    with open(workdir / "log.csv", "w", newline="") as fh:
        keys = sorted({k for r in ctx.history for k in r}, key=lambda k: (k != "epoch", k))
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(ctx.history)
    plot_curves(workdir / "curves.png", ctx.history)


def plot_curves(path: Path, history: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    xe = [r for r in history if r["stage"] == "xe"]
    ax1.plot([r["epoch"] for r in xe], [r["train_loss"] for r in xe], "o-")
    ax1.set(title="cross-entropy training loss", xlabel="epoch")
    ax2.plot([r["epoch"] for r in history], [r["val_cider"] for r in history], "o-")
    ax2.set(title="validation CIDEr-D (greedy)", xlabel="epoch (XE, then SCST)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def setup_distributed() -> tuple[int, int]:
    """Rank and world size under torchrun. Always gloo: the decoder and every tensor the ranks
    exchange live on the CPU, which nccl cannot carry (even on a machine with a GPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def replica_spread(model: torch.nn.Module, world: int) -> float:
    """Largest difference of any parameter across replicas (0.0 when they agree)."""
    if world == 1:
        return 0.0
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    gathered = [torch.zeros_like(flat) for _ in range(world)]
    dist.all_gather(gathered, flat)
    return max(float((g - gathered[0]).abs().max()) for g in gathered)


def build_context(args: argparse.Namespace, rank: int, world: int) -> Context:
    """Data, vocabulary and features. Under torchrun every rank computes its share of a
    missing feature cache (the calls to cached_features are collective), then reads the cache
    memory-mapped: no rank holds a copy of it in RAM, only the tag probabilities (views, N, T)."""
    if args.download and not args.data.exists():
        download_flickr8k(args.data)
    splits = load_splits(args.dataset, args.data, args.annotations)
    info = get_encoder(args.encoder)
    table = load_tag_table() if args.tags else None
    text = [c for f in text_files(args.text) for c in read_captions(f)] if args.text else []
    train_caps = [c for caps in splits["train"].captions for c in caps]
    vocab = caption_vocabulary(train_caps, text, args.min_count, table.words if table else ())
    progress = not args.no_progress and rank == 0
    val = splits["val"]
    if args.val_images:
        val = CaptionSet(val.paths[: args.val_images], val.captions[: args.val_images])
        splits["val"] = val
    ranks = Ranks(rank, world, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    # the frozen backbone's features give the tags; the decoder reads `fed` (the same features,
    # or with --tune-blocks the activations that enter the tuned blocks)
    fed = trunk_info(info, args.tune_blocks) if args.tune_blocks else info

    def store(encoder: EncoderInfo, paths: list[Path], views: int) -> FeatureStore:
        return FeatureStore.of(cached_features(encoder, paths, args.cache_dir, views, progress, ranks))

    paired, val_frozen = splits["train"].paths, store(info, val.paths, 1)
    head = build_tag_head(args.encoder, table) if table else None
    pseudo_count, photos, keep = 0, [], np.zeros(0, dtype=np.int64)
    if head is not None and args.pseudo_images:
        photos = unlabeled_photos(args.pseudo_images)
        pseudo, keep = pseudo_captioned(photos, store(info, photos, args.views), head, text,
                                        args.text, progress)
        if args.teacher_captions:
            pseudo, keep = with_teacher_captions(pseudo, keep, photos, args, progress)
        splits["train"] = CaptionSet(splits["train"].paths + pseudo.paths,
                                     splits["train"].captions + pseudo.captions)
        pseudo_count = len(pseudo)

    def train_store(encoder: EncoderInfo) -> FeatureStore:
        paired_store = store(encoder, paired, args.views)
        if not pseudo_count:
            return paired_store
        return paired_store.join(store(encoder, photos, args.views).select(keep))

    train_feats = train_store(info)
    tags = (TagData(table.words, tag_probs(head, train_feats), tag_probs(head, val_frozen))
            if head is not None and table is not None else None)
    val_feats = val_frozen
    if fed is not info:
        train_feats, val_feats = train_store(fed), store(fed, val.paths, 1)
    ood = dev_set(args.ood, info, fed, head, args.cache_dir, progress, ranks) if args.ood else None
    lm = (LanguageBatches(text, vocab, args.max_length, table.words if table else ())
          if text and args.lm_weight > 0 else None)
    return Context(
        args=args, splits=splits, vocab=vocab, train_feats=train_feats, val_feats=val_feats,
        val_refs=[[tokenize(c) for c in caps] for caps in val.captions],
        train_refs=[[tokenize(c) for c in caps] for caps in splits["train"].captions],
        tags=tags, lm=lm, ood=ood, pseudo_count=pseudo_count, rank=rank, world=world,
        autocast=use_bf16(args.bf16),
    )


def pseudo_captioned(photos: list[Path], feats: FeatureStore, head: TagHead, text: list[str],
                     text_dir: Path, progress: bool) -> tuple[CaptionSet, np.ndarray]:
    """Unlabeled photos (with their frozen features) given captions retrieved by their tags:
    the kept ones and their rows (photos without a sure tag are dropped)."""
    pool = [c for f in text_files(text_dir) if "coco" in f.name for c in read_captions(f)] or text
    retrieved = retrieve(tag_probs(head, feats, views=1)[0].numpy(), pool, load_tag_table().words)
    keep = np.array([i for i, caps in enumerate(retrieved) if caps], dtype=np.int64)
    if progress:
        print(f"pseudo-captions: {len(keep)} of {feats.shape[1]} unlabeled photos have a sure tag")
    return CaptionSet([photos[i] for i in keep], [retrieved[i] for i in keep]), keep


def with_teacher_captions(pseudo: CaptionSet, keep: np.ndarray, photos: list[Path],
                          args: argparse.Namespace, progress: bool) -> tuple[CaptionSet, np.ndarray]:
    """The pseudo-captioned photos and their rows, then the photos a stronger model captioned
    surely (--teacher-captions) with its captions: self-training rows of the same photo store."""
    records = json.loads(args.teacher_captions.read_text(encoding="utf-8"))
    rows, captions = teacher_captioned(records, photos, args.teacher_min_confidence)
    if progress:
        print(f"teacher captions: {len(rows)} of {len(records)} photos are sure enough")
    return (CaptionSet(pseudo.paths + [photos[r] for r in rows], pseudo.captions + captions),
            np.concatenate([keep, np.array(rows, dtype=np.int64)]))


def dev_set(folder: Path, info: EncoderInfo, fed: EncoderInfo, head: TagHead | None, cache_dir: Path,
            progress: bool, ranks: Ranks) -> DevSet:
    """A folder with images/ and captions.txt (token format), scored at every epoch: tags from
    the frozen features (`info`), the decoder's input from `fed`'s."""
    split = folder_split(folder)
    frozen = FeatureStore.of(cached_features(info, split.paths, cache_dir, 1, progress, ranks))
    feats = frozen if fed is info else FeatureStore.of(
        cached_features(fed, split.paths, cache_dir, 1, progress, ranks))
    return DevSet(feats, tag_probs(head, frozen)[0] if head is not None else None,
                  [[tokenize(c) for c in caps] for caps in split.captions])


def main(args: argparse.Namespace) -> Path | None:
    torch.manual_seed(args.seed)
    rank, world = setup_distributed()
    workdir = args.workdir or Path("runs") / args.out.name
    workdir.mkdir(parents=True, exist_ok=True)
    ctx = build_context(args, rank, world)
    info = get_encoder(args.encoder)
    cfg = DecoderConfig(len(ctx.vocab), info.feature_dim, info.grid[0] * info.grid[1],
                        args.embed_dim, args.hidden_size, args.attention_dim, args.dropout,
                        kind=DecoderKind(args.decoder))
    cfg.tag_count = len(ctx.tags.words) if ctx.tags else 0
    decoder = build_decoder(cfg)
    if ctx.tags:
        decoder.set_tag_words([ctx.vocab.index[w] for w in ctx.tags.words])
    model: torch.nn.Module = decoder
    if world > 1:
        if args.tune_blocks:
            raise SystemExit("--tune-blocks trains on one process (its blocks are not in DDP)")
        model = torch.nn.parallel.DistributedDataParallel(decoder)
    if args.tune_blocks:
        ctx.top = make_top(info, args.tune_blocks)
    if args.init:
        load_weights(ctx, decoder, torch.load(args.init, map_location="cpu", weights_only=False))
    optimizer = make_optimizer(model, ctx, args.lr, args.tune_lr)
    state = RunState()
    if args.resume and (workdir / "last.pt").is_file():
        ckpt = torch.load(workdir / "last.pt", map_location="cpu", weights_only=False)
        load_weights(ctx, decoder, ckpt)
        optimizer.load_state_dict(ckpt["optimizer"])
        ctx.history = ckpt["history"]
        state = RunState(**{f.name: ckpt[f.name] for f in fields(RunState) if f.name in ckpt})
        if ctx.is_main:
            print(f"resumed from {workdir / 'last.pt'} after {state.stage} epoch {state.epoch}")
    batches = TokenBatches(ctx.splits["train"], ctx.vocab, args.max_length)
    val_cider = CiderD(ctx.val_refs)
    train_cider = CiderD(ctx.scst_refs) if args.scst_epochs else val_cider
    while state.epoch < args.epochs + args.scst_epochs:
        if state.stage == "xe" and state.bad_epochs >= args.patience:
            if not args.scst_epochs:  # resumed after cross-entropy stopped early
                break
            state.epoch = max(state.epoch, args.epochs)  # cross-entropy stalled: on to SCST
        epoch = state.epoch + 1
        rng = np.random.default_rng(args.seed * 1000 + epoch)
        if epoch > args.epochs or state.stage == "scst":
            if state.stage == "xe":  # SCST starts from the best cross-entropy model
                best = torch.load(workdir / "best.pt", map_location="cpu", weights_only=False)
                load_weights(ctx, decoder, best)
                optimizer = make_optimizer(model, ctx, args.scst_lr, args.scst_lr)
                state.stage, state.bad_epochs = "scst", 0
            stats = scst_one_epoch(model, optimizer, ctx, train_cider, epoch, rng)
        else:
            stats = train_one_epoch(model, optimizer, batches, ctx, epoch, rng)
        if end_of_epoch(model, optimizer, ctx, state, stats, epoch, val_cider, workdir):
            break
    if world > 1:
        dist.barrier()
    if not ctx.is_main or args.no_export:
        return None
    return finish(args, workdir, ctx)


def make_optimizer(model: torch.nn.Module, ctx: Context, lr: float, top_lr: float
                   ) -> torch.optim.Optimizer:
    """Adam over the decoder, and over the tuned blocks (their own rate) when there are any."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    if ctx.top is not None:
        optimizer.add_param_group({"params": list(ctx.top.parameters()), "lr": top_lr})
    return optimizer


def load_weights(ctx: Context, decoder: CaptionDecoder, ckpt: dict[str, Any]) -> None:
    """A checkpoint's decoder weights, and its tuned blocks when this run tunes them too (a
    checkpoint of a frozen encoder leaves them at ImageNet's weights)."""
    if ckpt["vocab"] != ctx.vocab.words:
        raise SystemExit("the checkpoint was trained with another vocabulary than this run's")
    decoder.load_state_dict(ckpt["model"])
    if ctx.top is not None and "encoder_top" in ckpt:
        ctx.top.load_state_dict(ckpt["encoder_top"])


def end_of_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, ctx: Context,
                 state: RunState, stats: dict[str, Any], epoch: int, val_cider: CiderD,
                 workdir: Path) -> bool:
    """Validate, log, checkpoint, adjust the learning rate; True when training should stop."""
    args = ctx.args
    stats |= evaluate(model, ctx, val_cider)
    stats |= {"epoch": epoch, "stage": state.stage, "replica_spread": replica_spread(model, ctx.world),
              "lr": optimizer.param_groups[0]["lr"]}
    # the schedule (lr halving, patience) follows the training dataset's own val split only; the
    # --ood dev set only chooses which finished checkpoint is kept, never how training goes
    improved = stats["val_cider"] > state.best_cider
    keep = stats["select"] > state.best_select
    state.epoch, state.best_cider = epoch, max(state.best_cider, stats["val_cider"])
    state.best_select = max(state.best_select, stats["select"])
    state.bad_epochs = 0 if improved else state.bad_epochs + 1
    if ctx.is_main:
        log_epoch(workdir, ctx, stats)
        print(json.dumps({k: float(f"{v:.4g}") if isinstance(v, float) else v for k, v in stats.items()}),
              flush=True)
        if keep:
            save_checkpoint(workdir / "best.pt", model, optimizer, ctx, state)
        save_checkpoint(workdir / "last.pt", model, optimizer, ctx, state)
    if not improved and state.stage == "xe":  # halve when validation stalls; SCST's val is
        for group in optimizer.param_groups:    # too noisy epoch to epoch: there it stays put
            group["lr"] *= 0.5
    # a stalled cross-entropy stage goes on to SCST when there is one (see main's loop)
    return state.bad_epochs >= args.patience and (state.stage == "scst" or not args.scst_epochs)


def finish(args: argparse.Namespace, workdir: Path, ctx: Context) -> Path:
    """Hand the best checkpoint to the export command (which checks parity, writes the bundle
    and scores it on the test split), as a user would run it: training never imports export."""
    command = [sys.executable, "-m", "export.bundle_writer", str(workdir / "best.pt"),
               "--out", str(args.out), "--workdir", str(workdir),
               "--parity-images", *map(str, ctx.splits["val"].paths[:4]),
               "--evaluate", str(args.data), "--dataset", args.dataset,
               *(["--annotations", str(args.annotations)] if args.annotations else []),
               "--eval-beams", *map(str, args.eval_beams)]
    subprocess.run(command, check=True)
    return args.out


if __name__ == "__main__":
    main(get_args_parser().parse_args())
