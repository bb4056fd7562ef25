"""Training-side checks: real backbone weights, datasets through torchvision, DDP replicas."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from captioner.images import load_image, preprocess
from tests.synthetic import make_shapes_folder
from training.data import TokenBatches, coco_splits, flickr_splits, sidecar_splits
from training.encoders import available_encoders, get_encoder, imagenet_categories
from training.model import CaptionDecoder, DecoderConfig, packed_targets, sample_decode

ROOT = Path(__file__).resolve().parent.parent
DOG_PHOTO = "101654506_8eb26cfb60.jpg"  # Flickr8k: "a dog runs through the snow" (a whippet-like dog)


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite2", "mobilenet_v2"])
def test_backbone_weights_classify_a_real_photo(name: str, flickr_dir: Path) -> None:
    info = get_encoder(name)
    assert info.classifier is not None
    x = torch.from_numpy(preprocess(load_image(flickr_dir / "images" / DOG_PHOTO), info.input_spec))
    with torch.no_grad():
        top5 = info.classifier()(x[None]).softmax(-1)[0].topk(5).indices.tolist()
        grid = info.build()(x[None])
    dog_classes = range(151, 269)  # ImageNet's dog breeds
    assert any(i in dog_classes for i in top5), [imagenet_categories()[i] for i in top5]
    assert tuple(grid.shape) == (1, info.feature_dim, *info.grid)


def test_registry_lists_the_shipped_encoders() -> None:
    assert {"efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2",
            "mobilenet_v2"} <= set(available_encoders())


def test_flickr_splits_use_the_official_files(flickr_dir: Path) -> None:
    splits = flickr_splits(flickr_dir)
    assert len(splits["test"]) == 1000 and len(splits["val"]) == 1000
    assert len(splits["train"]) > 5900
    assert all(len(c) == 5 for c in splits["test"].captions)
    assert not set(splits["train"].paths) & set(splits["test"].paths)


def test_sidecar_and_coco_datasets(tmp_path: Path) -> None:
    pairs = make_shapes_folder(tmp_path / "shapes", per_class=3)
    splits = sidecar_splits(tmp_path / "shapes")
    assert sum(len(splits[s]) for s in ("train", "val", "test")) >= len(pairs) - 1
    import json
    ann = {"images": [{"id": i, "file_name": p.name} for i, (p, _) in enumerate(pairs)],
           "annotations": [{"id": i, "image_id": i, "caption": c} for i, (_, c) in enumerate(pairs)]}
    (tmp_path / "captions.json").write_text(json.dumps(ann))
    coco = coco_splits(tmp_path / "shapes", tmp_path / "captions.json")
    total = sum(len(coco[s]) for s in ("train", "val", "test"))
    assert total == len(pairs)
    first = coco["train"].paths[0]
    assert coco["train"].captions[0] == [c for p, c in pairs if p == first]


def test_teacher_forcing_decodes_only_active_rows() -> None:
    """Packed logits line up with packed targets, and gradients reach every parameter."""
    cfg = DecoderConfig(vocab_size=12, feature_dim=8, grid_size=4, embed_dim=16, hidden_size=16,
                        attention_dim=8, dropout=0.0)
    model = CaptionDecoder(cfg)
    captions = torch.tensor([[1, 5, 6, 7, 2], [1, 8, 2, 0, 0], [1, 9, 10, 2, 0]])
    lengths = torch.tensor([5, 3, 4])
    order = lengths.argsort(descending=True)
    captions, lengths = captions[order], lengths[order]
    logits, alpha_sum, steps = model(torch.randn(3, 4, 8), captions, lengths)
    targets = packed_targets(captions, lengths)
    assert logits.shape == (int(steps.sum()), 12) and targets.shape == (int(steps.sum()),)
    assert sorted(targets.tolist()) == sorted([5, 6, 7, 2, 8, 2, 9, 10, 2])
    torch.nn.functional.cross_entropy(logits, targets).backward()
    assert all(p.grad is not None for p in model.parameters())
    torch.testing.assert_close(alpha_sum.sum(1), steps.float())


def test_sampled_log_probs_match_teacher_forcing() -> None:
    """SCST's log-probabilities are those of the sampled captions under the model, per token."""
    torch.manual_seed(0)
    cfg = DecoderConfig(vocab_size=9, feature_dim=8, grid_size=4, embed_dim=16, hidden_size=16,
                        attention_dim=8, dropout=0.0)
    model = CaptionDecoder(cfg).eval()
    grid = torch.randn(3, 4, 8)
    tokens, logprob, counts = sample_decode(model, grid, start_id=1, end_id=2, max_length=6, n=4,
                                            banned=[0, 1])
    assert tokens.shape[0] == 12 and not bool((tokens == 1).any())
    for row in range(12):
        seq = tokens[row].tolist()
        length = seq.index(2) + 1 if 2 in seq else len(seq)
        assert counts[row] == length and all(t == 0 for t in seq[length:])
        caption = torch.tensor([[1, *seq[:length]]])
        logits, _, _ = model(grid[row // 4: row // 4 + 1], caption, torch.tensor([length + 1]))
        logp = torch.log_softmax(logits.index_fill(1, torch.tensor([0, 1]), -1e9), dim=1)
        expected = logp.gather(1, caption[0, 1:, None]).sum()
        torch.testing.assert_close(logprob[row], expected, rtol=1e-4, atol=1e-4)


def test_scst_follows_cross_entropy_after_resume(tmp_path: Path) -> None:
    """Cross-entropy, then a resumed run goes on with SCST from the best checkpoint."""
    from training.train import get_args_parser, main

    make_shapes_folder(tmp_path / "data", per_class=4, seed=3)
    base = ["--dataset", "sidecar", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "b"),
            "--workdir", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"),
            "--encoder", "efficientnet_lite0", "--views", "1", "--epochs", "3", "--batch-size", "8",
            "--lr", "3e-3", "--embed-dim", "32", "--hidden-size", "32", "--attention-dim", "16",
            "--min-count", "1", "--max-length", "6", "--no-export", "--no-progress",
            "--scst-batch", "8", "--scst-samples", "3"]
    main(get_args_parser().parse_args(base))
    main(get_args_parser().parse_args([*base, "--resume", "--scst-epochs", "2"]))
    with open(tmp_path / "run" / "log.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [(int(r["epoch"]), r["stage"]) for r in rows] == [
        (1, "xe"), (2, "xe"), (3, "xe"), (4, "scst"), (5, "scst")]
    assert all(0.0 < float(r["sample_reward"]) <= 10.0 for r in rows[3:])
    assert float(rows[3]["lr"]) == pytest.approx(2e-5)


def test_token_batches_cover_every_caption_once(tmp_path: Path) -> None:
    import numpy as np

    from captioner.vocab import Vocabulary
    pairs = make_shapes_folder(tmp_path, per_class=2, sidecars=True)
    split = sidecar_splits(tmp_path)["train"]
    vocab = Vocabulary.build((c for caps in split.captions for c in caps), 1)
    batches = TokenBatches(split, vocab, max_length=6)
    rows = np.concatenate(batches.batches(4, np.random.default_rng(0)))
    assert sorted(rows.tolist()) == list(range(len(batches)))
    assert len(pairs) >= len(batches)


@pytest.mark.slow
def test_two_process_ddp_keeps_replicas_identical(tmp_path: Path) -> None:
    make_shapes_folder(tmp_path / "data", per_class=4, seed=3)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", "29533", "-m", "training.train", "--dataset", "sidecar",
           "--data", str(tmp_path / "data"), "--out", str(tmp_path / "bundle"),
           "--workdir", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"),
           "--encoder", "efficientnet_lite0", "--views", "1", "--epochs", "2", "--batch-size", "8",
           "--embed-dim", "32", "--hidden-size", "32", "--attention-dim", "16", "--min-count", "1",
           "--max-length", "6", "--no-export", "--no-progress", "--bf16", "off"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(tmp_path / "run" / "log.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(float(r["replica_spread"]) == 0.0 for r in rows)
    assert float(rows[0]["train_loss"]) > 0
