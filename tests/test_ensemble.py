"""The "best quality" variant (docs/quality.md): an ensemble of decoders averaged at every step.

Two tiny random decoders exported as one pair of graphs agree with PyTorch (export/parity.py);
a decoder averaged with itself is that decoder (the averaging is log(mean p), not a sum);
members that mean other things by their ids are refused naming which; and export.ensemble adds
the int8 `quality` variant to a copy of the tiny bundle, leaves the default alone, and changes
nothing when it fails.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
from torch import Tensor, nn  # noqa: E402

from captioner.bundle import QUALITY, Manifest, Variant, load_bundle, write_manifest, write_tag_words  # noqa: E402
from captioner.captioner import Captioner, CaptionOptions  # noqa: E402
from captioner.images import InputSpec  # noqa: E402
from captioner.vocab import SPECIALS, Vocabulary  # noqa: E402
from export.ensemble import DECODER_INT8, ENCODER_INT8  # noqa: E402
from export.ensemble import main as ensemble_main  # noqa: E402
from export.from_bundle import decoder_from_bundle  # noqa: E402
from export.parity import check_parity  # noqa: E402
from export.to_onnx import export_encoder, export_step  # noqa: E402
from tests.synthetic import make_shapes_folder  # noqa: E402
from training.ensemble import DecoderEnsemble, Member  # noqa: E402
from training.model import CaptionDecoder, DecoderConfig  # noqa: E402
from training.tags import TagHead, TagTable  # noqa: E402

WORDS = [*SPECIALS, "a", "red", "blue", "circle", "square", "dog", "cat", "ball"]
TAG_IDS = (6, 9, 10)  # blue, dog, cat
SIZE, CELLS, DIM = 8, 4, 8  # 8 px images -> a 2 x 2 grid of 8 channels


def random_decoder(seed: int, hidden: int = 16, tag_ids: tuple[int, ...] = TAG_IDS,
                   vocab_size: int = len(WORDS)) -> CaptionDecoder:
    """Weights drawn wide enough that the word distributions are peaked, not near-uniform."""
    torch.manual_seed(seed)
    cfg = DecoderConfig(vocab_size=vocab_size, feature_dim=DIM, grid_size=CELLS, embed_dim=16,
                        hidden_size=hidden, attention_dim=8, dropout=0.0, tag_count=len(tag_ids))
    decoder = CaptionDecoder(cfg)
    with torch.no_grad():
        for p in decoder.parameters():
            p.normal_(0.0, 0.4)
    decoder.set_tag_words(list(tag_ids))
    return decoder.eval()


def member(decoder: CaptionDecoder, name: str, words: list[str] = WORDS) -> Member:
    return Member(decoder, Vocabulary(words), name)


def inputs(batch: int = 3, tags: int = len(TAG_IDS)) -> tuple[Tensor, Tensor]:
    torch.manual_seed(7)
    return torch.randn(batch, CELLS, DIM), torch.softmax(torch.randn(batch, tags), dim=1) * 0.8


@torch.no_grad()
def test_a_decoder_averaged_with_itself_is_that_decoder() -> None:
    decoder = random_decoder(0)
    ensemble = DecoderEnsemble([member(decoder, "a.pt"), member(decoder, "a.pt")]).eval()
    assert ensemble.cfg.hidden_size == ensemble.state_size == 32 and ensemble.cfg.embed_dim == 32
    grid, tags = inputs()
    feats, keys, h, c = decoder.encode(grid, tags)
    e_feats, e_keys, e_h, e_c = ensemble.encode(grid, tags)
    assert torch.equal(e_h, torch.cat([h, h], dim=1)) and e_feats.shape == (3, CELLS, 32)
    token = torch.tensor([1, 4, 5])
    for _ in range(4):
        logp, h, c, alpha = decoder.step(token, h, c, feats, keys, tags)
        e_logp, e_h, e_c, e_alpha = ensemble.step(token, e_h, e_c, e_feats, e_keys, tags)
        assert torch.allclose(e_logp, logp, atol=1e-6) and torch.allclose(e_alpha, alpha, atol=1e-7)
        assert torch.equal(e_c, torch.cat([c, c], dim=1))
        token = logp.argmax(dim=1)


@torch.no_grad()
def test_the_ensemble_writes_the_mean_of_the_members_probabilities() -> None:
    one, two = random_decoder(0), random_decoder(1, hidden=24)  # members may differ in size
    ensemble = DecoderEnsemble([member(one, "a.pt"), member(two, "b.pt")]).eval()
    assert ensemble.state_size == 16 + 24
    grid, tags = inputs()
    token = torch.tensor([1, 1, 1])

    def first_word(decoder: CaptionDecoder | DecoderEnsemble) -> Tensor:
        feats, keys, h, c = decoder.encode(grid, tags)
        return decoder.step(token, h, c, feats, keys, tags)[0].exp()

    assert torch.allclose(first_word(ensemble), (first_word(one) + first_word(two)) / 2, atol=1e-6)
    logp = first_word(ensemble).log()
    assert torch.allclose(logp.exp().sum(dim=1), torch.ones(3), atol=1e-5)


@pytest.mark.parametrize("other, reason", [
    (lambda: member(random_decoder(1), "b.pt", [*WORDS[:7], "green", *WORDS[8:]]),
     "b.pt cannot join an ensemble with a.pt: another vocabulary (word 7 is 'green', not 'circle')"),
    (lambda: member(random_decoder(1, vocab_size=11), "b.pt", WORDS[:11]),
     "b.pt cannot join an ensemble with a.pt: its vocabulary has 11 words, not 12"),
    (lambda: member(random_decoder(1, tag_ids=(6, 9, 11)), "b.pt"),
     "b.pt cannot join an ensemble with a.pt: other tag words (tag 2 is 'ball', not 'cat')"),
    (lambda: member(random_decoder(1, tag_ids=(6, 9)), "b.pt"),
     "b.pt cannot join an ensemble with a.pt: it reads 2 tag words, not 3"),
])
def test_members_that_mean_other_things_are_refused_naming_which(other, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        DecoderEnsemble([member(random_decoder(0), "a.pt"), other()])
    assert str(info.value) == reason


def tiny_tagged_bundle(root: Path, ensemble: DecoderEnsemble, single: CaptionDecoder
                       ) -> tuple[nn.Module, TagHead]:
    """A bundle of 8 px images on a one-layer backbone: fp32 = `single`, quality = `ensemble`."""
    torch.manual_seed(3)
    backbone = nn.Conv2d(3, DIM, kernel_size=4, stride=4).eval()
    words = ("blue", "dog", "cat")
    tag_head = TagHead(nn.Linear(DIM, 1000), TagTable(words, tuple(i % 3 for i in range(1000)))).eval()
    root.mkdir()
    export_encoder(backbone, single, SIZE, root / "encoder.onnx", tag_head)
    export_step(single, root / "decoder_step.onnx")
    export_encoder(backbone, ensemble, SIZE, root / "encoder.quality.onnx", tag_head)
    export_step(ensemble, root / "decoder_step.quality.onnx")
    Vocabulary(WORDS).save(root / "vocab.json")
    write_tag_words(root / "tags.json", words)
    variants = {"fp32": Variant("fp32", "encoder.onnx", "decoder_step.onnx"),
                QUALITY: Variant(QUALITY, "encoder.quality.onnx", "decoder_step.quality.onnx",
                                 ensemble.state_size)}
    write_manifest(root, Manifest(
        name="tiny-ensemble", encoder_name="conv", input_spec=InputSpec(SIZE, (0.5,) * 3, (0.5,) * 3),
        grid=(2, 2), feature_dim=16, hidden_size=16, vocab_size=len(WORDS), max_length=6,
        variants=variants, tags_file="tags.json"))
    return backbone, tag_head


def test_the_exported_ensemble_agrees_with_pytorch(tmp_path: Path) -> None:
    single = random_decoder(0)
    ensemble = DecoderEnsemble([member(single, "a.pt"), member(random_decoder(1, hidden=24), "b.pt")])
    backbone, tag_head = tiny_tagged_bundle(tmp_path / "bundle", ensemble, single)
    entry = json.loads((tmp_path / "bundle" / "manifest.json").read_text())["variants"]
    assert entry["fp32"] == {"encoder": "encoder.onnx", "decoder": "decoder_step.onnx"}
    assert entry[QUALITY]["hidden_size"] == 40
    bundle = load_bundle(tmp_path / "bundle")  # each variant's graphs checked at its own size
    assert not bundle.unusable and bundle.manifest.variants[QUALITY].hidden_size == 40
    batch = np.random.default_rng(0).normal(size=(4, 3, SIZE, SIZE)).astype(np.float32)
    report = check_parity(backbone, ensemble, tmp_path / "bundle", batch, variant=QUALITY, tag_head=tag_head)
    assert report.ok, report.summary()
    assert Captioner(tmp_path / "bundle", provider="cpu").variant == "fp32"  # auto never picks it
    results = Captioner(tmp_path / "bundle", provider="cpu", variant=QUALITY).caption_arrays(batch)
    assert len(results) == 4 and all(r.attention.shape[1:] == (2, 2) for r in results)


# --- python -m export.ensemble on the tiny (shapes) bundle ------------------------------------
def save_checkpoint(decoder: CaptionDecoder, vocab: Vocabulary, path: Path, encoder: str) -> Path:
    torch.save({"model": decoder.state_dict(), "decoder_config": decoder.cfg.to_dict(),
                "vocab": vocab.words, "encoder": encoder, "max_length": 6}, path)
    return path


@pytest.fixture(scope="module")
def checkpoints(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny bundle's decoder, a slightly different second one, and one with another vocabulary."""
    root = tmp_path_factory.mktemp("checkpoints")
    decoder, vocab, encoder, _ = decoder_from_bundle(tiny_bundle)
    out = {"first": save_checkpoint(decoder, vocab, root / "first.pt", encoder)}
    torch.manual_seed(1)
    with torch.no_grad():
        for p in decoder.parameters():
            p.add_(0.02 * p.abs().mean() * torch.randn_like(p))
    out["second"] = save_checkpoint(decoder, vocab, root / "second.pt", encoder)
    renamed = Vocabulary([*vocab.words[:-1], "zebra"])
    out["other_vocab"] = save_checkpoint(decoder, renamed, root / "other.pt", encoder)
    return out


@pytest.fixture(scope="module")
def calibration(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("calibration")
    make_shapes_folder(folder, per_class=1, seed=5, sidecars=False)
    return folder


def test_export_adds_the_int8_quality_variant_and_keeps_the_default(
        tiny_bundle: Path, checkpoints: dict[str, Path], calibration: Path, tmp_path: Path) -> None:
    bundle = Path(shutil.copytree(tiny_bundle, tmp_path / "bundle"))
    before = load_bundle(bundle).manifest
    ensemble_main([str(bundle), "--checkpoints", str(checkpoints["first"]), str(checkpoints["second"]),
                   "--calibration-images", str(calibration), "--check-images", "8"])
    manifest = load_bundle(bundle).manifest  # every checksum, the new files included
    quality = manifest.variants[QUALITY]
    assert (quality.encoder, quality.decoder) == (ENCODER_INT8, DECODER_INT8)
    assert quality.hidden_size == 2 * before.hidden_size
    assert manifest.default_variant == before.default_variant and manifest.variant_for("cpu") != QUALITY
    assert {v: manifest.variants[v] for v in before.variants} == before.variants
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob("*.old"))
    assert not (bundle / "encoder.quality.onnx").exists()  # only the int8 pair ships
    assert manifest.training[QUALITY]["decoders"] == 2
    held_back = make_shapes_folder(tmp_path / "photos", per_class=1, seed=99, sidecars=False)
    captioner = Captioner(bundle, provider="cpu", variant=QUALITY)
    results = dict(captioner.caption_files([p for p, _ in held_back], CaptionOptions(beam_size=3)))
    right = sum(results[path].text == caption for path, caption in held_back)
    assert right >= 0.8 * len(held_back), [(p.name, results[p].text) for p, _ in held_back]


def test_a_failed_export_changes_nothing(tiny_bundle: Path, checkpoints: dict[str, Path],
                                         calibration: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    bundle = Path(shutil.copytree(tiny_bundle, tmp_path / "bundle"))
    snapshot = {p.name: p.read_bytes() for p in bundle.iterdir()}
    with pytest.raises(SystemExit) as info:
        ensemble_main([str(bundle), "--checkpoints", str(checkpoints["first"]),
                       str(checkpoints["other_vocab"]), "--calibration-images", str(calibration)])
    assert info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert "other.pt does not fit" in err and "'zebra'" in err and "\n" not in err, err
    assert {p.name: p.read_bytes() for p in bundle.iterdir()} == snapshot
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]
    with pytest.raises(SystemExit):  # the bundle's own decoder must come first (its calibration)
        ensemble_main([str(bundle), "--checkpoints", str(checkpoints["second"]),
                       str(checkpoints["first"]), "--calibration-images", str(calibration)])
    assert "second.pt is not the decoder the bundle was made from" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in bundle.iterdir()} == snapshot
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_select_variant_scores_quality_but_never_makes_it_the_default() -> None:
    from training.select_variant import VariantScore, choose

    scores = [VariantScore("fp32", "cpu", 1000, 30.0, bleu4=21.5, cider=55.9),
              VariantScore("int8", "cpu", 1000, 50.0, bleu4=21.4, cider=55.5),
              VariantScore(QUALITY, "cpu", 1000, 90.0, bleu4=22.5, cider=58.0)]  # even if fastest
    assert choose(scores) == "int8" and scores[2].keeps_quality


def test_cli_names_quality_and_refuses_a_bundle_without_it_in_one_line(
        tiny_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from captioner.cli import main as cli_main

    with pytest.raises(SystemExit):
        cli_main(["caption", "--help"])
    assert "best quality: an ensemble of decoders, about half the speed" in " ".join(
        capsys.readouterr().out.split())
    photo = make_shapes_folder(tmp_path, per_class=1, seed=3, sidecars=False)[0][0]
    code = cli_main(["caption", str(photo), "--model", str(tiny_bundle), "--variant", QUALITY])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "has no 'quality' variant" in err and "\n" not in err, err


def test_confidence_reads_the_bundles_own_decoder_in_an_ensembles_features() -> None:
    from captioner.confidence import Calibration, Neighbours, Phrases

    memory = Neighbours.build(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), np.array([1.2, 0.1]), k=1)
    cal = Calibration((0.0,) * 10, 0.0, (0.0,) * 10, (1.0,) * 10, np.zeros(3, np.float32),
                      np.ones(3, np.float32), memory, Phrases.build([]))
    own = np.array([0.9, 0.1, 0.0])
    assert cal.photo_signals(np.concatenate([own, [5.0, -3.0, 7.0]])) == cal.photo_signals(own)


def test_a_member_with_tuned_encoder_blocks_reads_its_own_grid(
        tiny_bundle: Path, checkpoints: dict[str, Path], calibration: Path, tmp_path: Path) -> None:
    """A checkpoint of `train.py --tune-blocks` joins an ensemble with a frozen-encoder one: the
    quality encoder runs the trunk once, gives each decoder its own grid (parity checked by the
    export), and the second member's features are those of its tuned grid, not the frozen one."""
    from captioner.images import load_image, preprocess_batch
    from training.encoder_top import make_top, tuned_backbone
    from training.encoders import get_encoder

    info = get_encoder("efficientnet_lite0")
    top = make_top(info, 1)
    with torch.no_grad():
        top.top.conv_head.weight.mul_(1.5)  # a visibly different grid
    ckpt = torch.load(checkpoints["second"], weights_only=False)
    tuned_path = tmp_path / "tuned.pt"
    torch.save({**ckpt, "encoder_top": top.state_dict(), "tune_blocks": 1}, tuned_path)
    bundle = Path(shutil.copytree(tiny_bundle, tmp_path / "bundle"))
    ensemble_main([str(bundle), "--checkpoints", str(checkpoints["first"]), str(tuned_path),
                   "--calibration-images", str(calibration), "--check-images", "0"])
    photos = sorted(calibration.glob("*.jpg"))[:2]
    batch = preprocess_batch([load_image(p) for p in photos], info.input_spec)
    quality = Captioner(bundle, provider="cpu", variant=QUALITY).encoder.run(None, {"image": batch})[0]
    second = torch.load(tuned_path, weights_only=False)
    decoder = CaptionDecoder(DecoderConfig(**second["decoder_config"]))
    decoder.load_state_dict(second["model"])
    decoder.eval()
    image = torch.from_numpy(batch)
    with torch.no_grad():
        tuned_grid, frozen_grid = (g.flatten(2).transpose(1, 2)
                                   for g in tuned_backbone(info, [(top.state_dict(), 1)])(image))
        own = decoder.encode(tuned_grid)[0].numpy()  # the tiny bundle reads no tags
        frozen = decoder.encode(frozen_grid)[0].numpy()
    width = own.shape[-1]
    # int8 encoder: near its own grid's features, clearly apart from the frozen grid's
    assert np.abs(quality[..., width:] - own).mean() < 0.5 * np.abs(quality[..., width:] - frozen).mean()
