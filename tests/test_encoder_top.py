"""Fine-tuning the encoder's last blocks on cached activations (`train.py --tune-blocks`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.synthetic import make_shapes_folder
from training.encoder_top import make_top, trunk_info, tuned_backbone
from training.encoders import get_encoder

LITE0 = get_encoder("efficientnet_lite0")


def test_trunk_then_top_is_the_whole_backbone() -> None:
    """The cached activations through an untouched top give the frozen features exactly, and
    an untouched tuned backbone gives them to both the decoder and the tags."""
    image = torch.randn(2, 3, 224, 224)
    trunk, top = trunk_info(LITE0, 1), make_top(LITE0, 1)
    assert trunk.feature_dim == 192 and trunk.grid == LITE0.grid
    with torch.no_grad():
        whole = LITE0.build()(image).flatten(2).transpose(1, 2)
        cached = trunk.build()(image).flatten(2).transpose(1, 2)
        grid, tag_grid = tuned_backbone(LITE0, [(top.state_dict(), 1)])(image)
    torch.testing.assert_close(top(cached), whole)
    torch.testing.assert_close(grid, tag_grid)
    torch.testing.assert_close(grid.flatten(2).transpose(1, 2), whole)


def _changed_top(blocks: int, scale: float) -> dict[str, torch.Tensor]:
    """A top of `blocks` tuned blocks whose head differs visibly from ImageNet's."""
    top = make_top(LITE0, blocks)
    with torch.no_grad():
        top.top.conv_head.weight.mul_(scale)
    return top.state_dict()


def test_members_that_tuned_different_block_counts_each_get_their_own_grid() -> None:
    """An ensemble of a checkpoint that tuned 3 blocks, one that tuned 1 and a frozen one: one
    trunk (cut before the 3), and each member's grid is what its own backbone alone gives."""
    image = torch.randn(1, 3, 224, 224)
    deep, shallow = _changed_top(3, 1.5), _changed_top(1, 0.5)
    with torch.no_grad():
        grids, tags = tuned_backbone(LITE0, [(deep, 3), (shallow, 1), None])(image)
        deep_alone, frozen = tuned_backbone(LITE0, [(deep, 3)])(image)
        shallow_alone, _ = tuned_backbone(LITE0, [(shallow, 1)])(image)
    channels = frozen.shape[1]
    assert grids.shape[1] == 3 * channels
    torch.testing.assert_close(grids[:, :channels], deep_alone)
    torch.testing.assert_close(grids[:, channels:2 * channels], shallow_alone)
    torch.testing.assert_close(grids[:, 2 * channels:], frozen)
    torch.testing.assert_close(tags, frozen)
    assert not torch.allclose(deep_alone, shallow_alone)


def test_tuned_blocks_keep_imagenet_batch_norm_statistics() -> None:
    top = make_top(LITE0, 1)
    before = top.top.bn1.running_mean.clone()
    top.train()
    top(torch.randn(4, 49, 192))
    torch.testing.assert_close(top.top.bn1.running_mean, before)


def test_other_encoders_refuse_tuned_blocks() -> None:
    with pytest.raises(ValueError, match="EfficientNet-Lite"):
        trunk_info(get_encoder("mobilenet_v2"), 1)


@pytest.mark.slow
def test_tuned_blocks_train_and_export_with_frozen_tags(tmp_path: Path) -> None:
    """A run with --tune-blocks moves the last block's weights and keeps them in its checkpoint;
    the exported encoder passes parity, feeds the decoder the tuned grid, and computes the tags
    from the frozen one (the tags the reviewed table was measured on)."""
    from captioner.captioner import Captioner
    from captioner.images import load_image, preprocess_batch
    from export.bundle_writer import main as export_main
    from training.tags import build_tag_head
    from training.train import get_args_parser, main

    make_shapes_folder(tmp_path / "data", per_class=3, seed=3)
    main(get_args_parser().parse_args([
        "--dataset", "sidecar", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "b"),
        "--workdir", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"),
        "--encoder", "efficientnet_lite0", "--views", "1", "--epochs", "2", "--batch-size", "8",
        "--lr", "3e-3", "--tune-blocks", "1", "--tune-lr", "1e-2", "--embed-dim", "32",
        "--hidden-size", "32", "--attention-dim", "16", "--min-count", "1", "--max-length", "6",
        "--no-export", "--no-progress", "--bf16", "off"]))
    ckpt = torch.load(tmp_path / "run" / "last.pt", map_location="cpu", weights_only=False)
    assert ckpt["tune_blocks"] == 1 and ckpt["epoch"] == 2
    imagenet = make_top(LITE0, 1).state_dict()
    moved = [k for k, v in ckpt["encoder_top"].items() if v.is_floating_point()
             and not torch.equal(v, imagenet[k])]
    assert any(k.startswith("top.conv_head") for k in moved)
    assert not any("running_" in k for k in moved)  # batch norm statistics stay ImageNet's

    photos = sorted((tmp_path / "data").glob("*.jpg"))[:3]
    export_main([str(tmp_path / "run" / "last.pt"), "--out", str(tmp_path / "bundle"),
                 "--parity-images", *map(str, photos)])  # raises unless parity passed
    cap = Captioner(tmp_path / "bundle", provider="cpu", variant="fp32")
    batch = preprocess_batch([load_image(p) for p in photos], LITE0.input_spec)
    tags = cap.encoder.run(["tags"], {"image": batch})[0]
    with torch.no_grad():
        frozen = LITE0.build()(torch.from_numpy(batch)).flatten(2).transpose(1, 2)
        tuned = tuned_backbone(LITE0, [(ckpt["encoder_top"], 1)])(torch.from_numpy(batch))[0]
        expected = build_tag_head("efficientnet_lite0")(frozen).numpy()
    np.testing.assert_allclose(tags, expected, atol=1e-4)
    assert float((tuned.flatten(2).transpose(1, 2) - frozen).abs().max()) > 1e-2

    # the bundle keeps the tuned blocks, so that export.finetune trains on the grid it runs
    from captioner.bundle import load_bundle
    from export.finetune import FinetuneConfig, SourceEncoder, features
    from training.data import CaptionSet

    bundle = load_bundle(tmp_path / "bundle")
    assert bundle.manifest.tuned_top is not None and bundle.manifest.tuned_top.blocks == 1
    source = SourceEncoder.of(bundle)
    cfg = FinetuneConfig(tmp_path / "bundle", tmp_path / "data", tmp_path / "new",
                         cache_dir=tmp_path / "cache", progress=False)
    feats = features(cfg, source, CaptionSet(photos, [["x"]] * len(photos)), 1, tagged=True)
    torch.testing.assert_close(feats.grid[0], tuned.flatten(2).transpose(1, 2), atol=2e-2, rtol=1e-2)
    assert feats.tags is not None
    np.testing.assert_allclose(feats.tags[0].numpy(), expected, atol=2e-3)
