"""Training-side checks: real backbone weights, datasets through torchvision, DDP replicas."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from captioner.images import load_image, preprocess
from tests.synthetic import make_shapes_folder
from training.data import TokenBatches, coco_splits, flickr_splits, sidecar_splits
from training.encoders import available_encoders, get_encoder, imagenet_categories
from training.model import DecoderConfig, DecoderKind, build_decoder, packed_targets, sample_decode

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
    ann = {"images": [{"id": i, "file_name": p.name} for i, (p, _) in enumerate(pairs)],
           "annotations": [{"id": i, "image_id": i, "caption": c} for i, (_, c) in enumerate(pairs)]}
    (tmp_path / "captions.json").write_text(json.dumps(ann))
    coco = coco_splits(tmp_path / "shapes", tmp_path / "captions.json")
    total = sum(len(coco[s]) for s in ("train", "val", "test"))
    assert total == len(pairs)
    first = coco["train"].paths[0]
    assert coco["train"].captions[0] == [c for p, c in pairs if p == first]


DECODERS = [(DecoderKind.SAT, 0), (DecoderKind.UPDOWN, 0), (DecoderKind.UPDOWN, 3)]


def tiny_decoder(vocab_size: int, kind: DecoderKind, tag_count: int):
    cfg = DecoderConfig(vocab_size=vocab_size, feature_dim=8, grid_size=4, embed_dim=16, hidden_size=16,
                        attention_dim=8, dropout=0.0, tag_count=tag_count, kind=kind)
    model = build_decoder(cfg)
    if tag_count:
        model.set_tag_words(list(range(4, 4 + tag_count)))
    return model


@pytest.mark.parametrize(("kind", "tag_count"), DECODERS)
def test_teacher_forcing_decodes_only_active_rows(kind: DecoderKind, tag_count: int) -> None:
    """Packed logits line up with packed targets, and gradients reach every parameter."""
    model = tiny_decoder(12, kind, tag_count)
    tags = torch.rand(3, tag_count) if tag_count else None
    captions = torch.tensor([[1, 5, 6, 7, 2], [1, 8, 2, 0, 0], [1, 9, 10, 2, 0]])
    lengths = torch.tensor([5, 3, 4])
    order = lengths.argsort(descending=True)
    captions, lengths = captions[order], lengths[order]
    logits, alpha_sum, steps = model(torch.randn(3, 4, 8), captions, lengths, tags)
    targets = packed_targets(captions, lengths)
    assert logits.shape == (int(steps.sum()), 12) and targets.shape == (int(steps.sum()),)
    assert sorted(targets.tolist()) == sorted([5, 6, 7, 2, 8, 2, 9, 10, 2])
    torch.nn.functional.cross_entropy(logits, targets).backward()
    assert all(p.grad is not None for p in model.parameters())
    torch.testing.assert_close(alpha_sum.sum(1), steps.float())


@pytest.mark.parametrize("kind", list(DecoderKind))
def test_sampled_log_probs_match_teacher_forcing(kind: DecoderKind) -> None:
    """SCST's log-probabilities are those of the sampled captions under the model, per token."""
    torch.manual_seed(0)
    model = tiny_decoder(9, kind, 0).eval()
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


def test_scst_reward_counts_the_end_of_a_finished_caption() -> None:
    """A caption cut off mid-phrase loses the "<end>" n-grams a finished one earns."""
    from captioner.vocab import Vocabulary
    from training.cider import CiderD
    from training.train import END, ended

    vocab = Vocabulary(["<pad>", "<start>", "<end>", "<unk>", "a", "dog", "runs", "red"])
    finished = [4, 5, 6, 2, 0]
    assert ended(finished, vocab) == ["a", "dog", "runs", END]
    assert ended([4, 5, 6, 4, 7], vocab) == ["a", "dog", "runs", "a", "red"]
    refs = [["a", "dog", "runs", END], ["the", "dog", "runs", "fast", END]]
    cider = CiderD([refs, [["a", "cat", END]]])
    assert cider.score(ended(finished, vocab), refs) > cider.score(ended([4, 5, 6, 4, 0], vocab), refs)


def test_scst_epochs_draw_the_asked_share_of_pseudo_captioned_photos() -> None:
    """Half of an epoch from the 100 pseudo-captioned photos (the last rows), no photo twice."""
    from training.train import scst_order

    rng = np.random.default_rng(0)
    order = scst_order(1000, 100, 200, 0.5, rng)
    assert len(order) == 200 == len(set(order.tolist()))
    assert int((order >= 900).sum()) == 100
    assert int((scst_order(1000, 100, 400, 0.5, rng) >= 900).sum()) == 100  # only 100 exist
    assert sorted(scst_order(1000, 100, 0, None, rng).tolist()) == list(range(1000))


def test_greedy_decoding_never_picks_a_banned_word() -> None:
    """Validation decodes as the app does: <unk> is never written, however likely."""
    from training.model import greedy_decode

    torch.manual_seed(0)
    model = tiny_decoder(9, DecoderKind.SAT, 0).eval()
    with torch.no_grad():
        model.out_bias[3] = 50.0  # <unk> dominates every step
        grid = torch.randn(5, 4, 8)
        assert bool((greedy_decode(model, grid, 1, 6) == 3).all())
        tokens = greedy_decode(model, grid, 1, 6, banned=(0, 1, 3))
    assert not bool(torch.isin(tokens, torch.tensor([0, 1, 3])).any())


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


def test_rank_shares_are_disjoint_in_order_and_cover_every_photo() -> None:
    from training.features import Ranks

    for n in (0, 1, 5, 12, 13, 1001):
        for world in (1, 2, 3, 7):
            shares = [Ranks(r, world).share(n) for r in range(world)]
            assert [i for s in shares for i in s] == list(range(n))
            assert max(len(s) for s in shares) - min(len(s) for s in shares) <= 1


def _memmap(path: Path, array: np.ndarray) -> np.ndarray:
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=array.shape)
    out[:] = array
    out.flush()
    return np.load(path, mmap_mode="r")


def test_feature_store_reads_joined_and_selected_caches_like_the_arrays(tmp_path: Path) -> None:
    """A store over two caches, the second subset, reads what torch.cat of the in-RAM arrays
    would give, as float32, and stays backed by the memmaps."""
    from training.features import FeatureStore

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((2, n, 3, 4)).astype(np.float16) for n in (5, 6))
    keep = np.array([4, 0, 2])
    store = FeatureStore.of(_memmap(tmp_path / "a.npy", a)).join(
        FeatureStore.of(_memmap(tmp_path / "b.npy", b)).select(keep))
    whole = torch.cat([torch.from_numpy(a), torch.from_numpy(b)[:, torch.from_numpy(keep)]], dim=1)
    assert store.shape == tuple(whole.shape) == (2, 8, 3, 4)
    assert all(isinstance(x, np.memmap) for x in store.arrays)
    views, rows = torch.tensor([1, 0, 1, 0, 1]), torch.tensor([7, 0, 5, 6, 3])
    got = store[views, rows]
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, whole[views, rows].float())
    torch.testing.assert_close(store[1, 3:8], whole[1, 3:8].float())
    torch.testing.assert_close(store.select(np.array([6, 1]))[0, np.array([1, 0])], whole[0, [1, 6]].float())
    for outside in (np.array([8]), np.array([-1])):
        with pytest.raises(IndexError):
            store[0, outside]
        with pytest.raises(IndexError):
            store.select(outside)


@pytest.mark.slow
def test_two_ranks_share_extraction_and_write_the_one_process_cache(tmp_path: Path) -> None:
    """Under torchrun each rank decodes only its half of the photos; the joined cache has the
    key, the meta and the features of a cache made by one process."""
    from training.features import cache_key, cached_features

    pairs = make_shapes_folder(tmp_path / "data", per_class=1, seed=5, sidecars=False)
    paths = sorted(p for p, _ in pairs)
    (tmp_path / "list.txt").write_text("\n".join(map(str, paths)))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", "29534", "-m", "tests.feature_shards", str(tmp_path / "list.txt"),
           str(tmp_path / "ranks" / "cache"), "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    decoded = [json.loads((tmp_path / "ranks" / f"rank{r}.json").read_text())["decoded"] for r in (0, 1)]
    assert decoded == [list(map(str, paths[:6])), list(map(str, paths[6:]))]
    info = get_encoder("efficientnet_lite0")
    one = cached_features(info, paths, tmp_path / "one", views=2, progress=False)
    key = cache_key(info, paths, 2)
    shared = tmp_path / "ranks" / "cache"
    assert sorted(p.name for p in shared.iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())
    assert (shared / f"{key}.json").read_text() == (tmp_path / "one" / f"{key}.json").read_text()
    two = np.load(shared / f"{key}.npy", mmap_mode="r")
    assert two.shape == one.shape == (2, 12, 49, 1280)
    np.testing.assert_allclose(two.astype(np.float32), one.astype(np.float32), atol=2e-2, rtol=1e-2)
    assert float(np.abs(one[:, 1:].astype(np.float32) - one[:, :-1].astype(np.float32)).max()) > 1.0


def test_build_context_reads_every_feature_through_memmaps(tmp_path: Path, flickr_dir: Path) -> None:
    """Flickr-style training data, tags, pseudo-captioned photos and an --ood set: every store
    is backed by the cache files (no in-RAM copy), the pseudo photos are appended without
    copying, and the tag probabilities equal those of the cache loaded whole."""
    import shutil

    from training.features import FeatureStore
    from training.pseudo import unlabeled_photos
    from training.tags import build_tag_head, tag_probs
    from training.train import build_context, get_args_parser

    make_shapes_folder(tmp_path / "data", per_class=2, seed=3)
    (tmp_path / "pseudo").mkdir()
    for name in (DOG_PHOTO, "1000268201_693b08cb0e.jpg"):
        shutil.copyfile(flickr_dir / "images" / name, tmp_path / "pseudo" / name)
    shutil.copyfile(tmp_path / "data" / "red_circle_3_0.jpg", tmp_path / "pseudo" / "shape.jpg")
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "coco_captions.txt").write_text(
        "a.jpg#0\ta dog runs through the snow\nb.jpg#0\ta girl climbs into a playhouse\n")
    (tmp_path / "ood" / "images").mkdir(parents=True)
    shutil.copyfile(flickr_dir / "images" / DOG_PHOTO, tmp_path / "ood" / "images" / "dog.jpg")
    (tmp_path / "ood" / "captions.txt").write_text("dog.jpg#0\ta dog in the snow\n")
    args = get_args_parser().parse_args([
        "--dataset", "sidecar", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "b"),
        "--cache-dir", str(tmp_path / "cache"), "--encoder", "efficientnet_lite0",
        "--text", str(tmp_path / "text"), "--pseudo-images", str(tmp_path / "pseudo"),
        "--ood", str(tmp_path / "ood"), "--min-count", "1", "--no-progress"])
    ctx = build_context(args, 0, 1)
    stores: list[FeatureStore] = [ctx.train_feats, ctx.val_feats, *([ctx.ood.feats] if ctx.ood else [])]
    backing = [a for s in stores for a in s.arrays]
    files = [Path(str(a.filename)) for a in backing if isinstance(a, np.memmap)]
    assert len(backing) == len(files) == 4 and {f.parent for f in files} == {tmp_path / "cache"}
    own, pseudo = (np.array(a) for a in ctx.train_feats.arrays)
    photos = unlabeled_photos(tmp_path / "pseudo")
    kept = [photos.index(p) for p in ctx.splits["train"].paths[own.shape[1]:]]
    assert tmp_path / "pseudo" / DOG_PHOTO in ctx.splits["train"].paths and len(kept) < len(photos)
    assert ctx.train_feats.shape == (2, own.shape[1] + len(kept), 49, 1280)
    whole = torch.cat([torch.from_numpy(own), torch.from_numpy(pseudo)[:, kept]], dim=1)
    rows = torch.arange(ctx.train_feats.shape[1] - 1, -1, -1)
    torch.testing.assert_close(ctx.train_feats[1, rows], whole[1, rows].float())
    assert ctx.tags is not None and ctx.ood is not None and ctx.ood.tags is not None
    torch.testing.assert_close(ctx.tags.train, tag_probs(build_tag_head("efficientnet_lite0"), whole))
    assert ctx.ood.feats.shape == (1, 1, 49, 1280)


def test_teacher_captions_join_training_as_rows_of_the_unlabeled_store(tmp_path: Path,
                                                                       flickr_dir: Path) -> None:
    """--teacher-captions: the sure photo joins the training split with the teacher's captions,
    its features read from the unlabeled photos' cache; the unsure one does not."""
    import shutil

    from training.train import build_context, get_args_parser

    make_shapes_folder(tmp_path / "data", per_class=2, seed=3)
    (tmp_path / "pseudo").mkdir()
    for name in (DOG_PHOTO, "1000268201_693b08cb0e.jpg"):
        shutil.copyfile(flickr_dir / "images" / name, tmp_path / "pseudo" / name)
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "coco_captions.txt").write_text("a.jpg#0\ta dog runs through the snow\n")
    teacher = tmp_path / "teacher.json"
    teacher.write_text(json.dumps([
        {"file": str(tmp_path / "pseudo" / DOG_PHOTO), "caption": "a dog in the snow", "confidence": 0.9,
         "alternatives": [{"caption": "a dog in the snow"}, {"caption": "a white dog in the snow"}]},
        {"file": str(tmp_path / "pseudo" / "1000268201_693b08cb0e.jpg"), "caption": "a girl",
         "confidence": 0.3}]))
    base = ["--dataset", "sidecar", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "b"),
            "--cache-dir", str(tmp_path / "cache"), "--encoder", "efficientnet_lite0",
            "--text", str(tmp_path / "text"), "--pseudo-images", str(tmp_path / "pseudo"),
            "--min-count", "1", "--no-progress"]
    plain = build_context(get_args_parser().parse_args(base), 0, 1)
    taught = build_context(get_args_parser().parse_args([*base, "--teacher-captions", str(teacher)]), 0, 1)
    assert taught.splits["train"].paths == [*plain.splits["train"].paths, tmp_path / "pseudo" / DOG_PHOTO]
    assert taught.splits["train"].captions[-1] == ["a dog in the snow", "a white dog in the snow"]
    assert taught.pseudo_count == plain.pseudo_count + 1
    assert taught.train_feats.shape[1] == plain.train_feats.shape[1] + 1
    dog_row = plain.splits["train"].paths.index(tmp_path / "pseudo" / DOG_PHOTO)
    torch.testing.assert_close(taught.train_feats[0, [taught.train_feats.shape[1] - 1]],
                               plain.train_feats[0, [dog_row]])
