"""Tags and the text prior: the reviewed ImageNet table, the copy gate, simulated tags, retrieval."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from captioner.confidence import Calibration, Neighbours, Phrases, caption_signals, feature_distance
from captioner.tags import mentioned, top_tags
from captioner.vocab import Vocabulary
from training.model import CaptionDecoder, DecoderConfig
from training.pseudo import RetrievalConfig, retrieve
from training.tags import load_tag_table
from training.text_prior import LanguageBatches, caption_vocabulary


@pytest.fixture(scope="module")
def table():
    return load_tag_table()


def test_table_maps_breeds_and_everyday_objects(table) -> None:
    from training.encoders import imagenet_categories

    names = imagenet_categories()
    word = {names[i]: table.words[w] for i, w in enumerate(table.class_word) if w >= 0}
    assert word["golden retriever"] == word["pug"] == "dog"
    assert word["tabby"] == "cat"
    assert word["four-poster"] == "bed" and word["studio couch"] == "couch"
    assert word["toilet seat"] == "toilet" and word["laptop"] == "laptop"
    assert word["refrigerator"] == "refrigerator" and word["park bench"] == "bench"
    unmapped = [names[i] for i, w in enumerate(table.class_word) if w < 0]
    assert "tench" not in word and 100 < len(unmapped) < 300, len(unmapped)
    m = table.matrix()
    assert m.shape == (1000, len(table.words)) and float(m.sum()) == 1000 - len(unmapped)


def test_top_tags_and_mentions() -> None:
    probs = np.array([0.05, 0.7, 0.2, 0.01])
    tags = top_tags(probs, ["cat", "dog", "ball", "bed"], min_p=0.15)
    assert [(t.word, round(t.p, 2)) for t in tags] == [("dog", 0.7), ("ball", 0.2)]
    assert mentioned("dog", "two dogs play".split()) and not mentioned("dog", ["hotdog"])


def tagged_decoder(vocab_size: int = 12, tag_ids: tuple[int, ...] = (5, 6, 7)) -> CaptionDecoder:
    torch.manual_seed(0)
    cfg = DecoderConfig(vocab_size=vocab_size, feature_dim=8, grid_size=4, embed_dim=16,
                        hidden_size=16, attention_dim=8, dropout=0.0, tag_count=len(tag_ids))
    model = CaptionDecoder(cfg).eval()
    model.set_tag_words(list(tag_ids))
    return model


def test_copy_gate_mixes_a_proper_distribution_towards_the_tag() -> None:
    model = tagged_decoder()
    grid, token = torch.randn(2, 4, 8), torch.tensor([1, 1])
    feats, keys, h, c = model.encode(grid)
    plain, *_ = model.step(token, h, c, feats, keys, torch.zeros(2, 3))
    tags = torch.tensor([[0.0, 0.9, 0.0], [0.0, 0.9, 0.0]])
    with torch.no_grad():
        model.copy_gate.bias.fill_(6.0)  # a gate that trusts the tags
    with torch.no_grad():
        feats, keys, h, c = model.encode(grid, tags)
        logp, *_ = model.step(token, h, c, feats, keys, tags)
    assert torch.allclose(logp.exp().sum(dim=1), torch.ones(2), atol=1e-5)
    assert torch.allclose(plain.exp().sum(dim=1), torch.ones(2), atol=1e-5)
    assert (logp.argmax(dim=1) == 6).all() and float(logp[0, 6].exp()) > 0.9


def test_simulated_tags_name_the_caption_words() -> None:
    vocab = Vocabulary.build(["a dog on a bed", "two cats near a toilet"], min_count=1)
    words = ("bed", "cat", "dog", "toilet")
    lm = LanguageBatches(["a dog on a bed", "two cats near a toilet"], vocab, 10, words)
    lm.sim = type(lm.sim)(none_rate=0.0, distractors=0)
    tokens, lengths, tags = lm.draw(8, np.random.default_rng(0))
    assert tags.shape == (8, 4) and float(tags.sum(dim=1).max()) <= 1.0 + 1e-6
    for row, ids in enumerate(tokens.tolist()):
        said = {w for w in vocab.decode(ids)}
        named = {words[i] for i in torch.nonzero(tags[row]).flatten().tolist()}
        assert named == ({"dog", "bed"} if "dog" in said else {"cat", "toilet"})


def test_vocabulary_keeps_every_tag_word() -> None:
    vocab = caption_vocabulary(["a dog runs"], ["a dog sits"], 2, ("dog", "giraffe"))
    assert "giraffe" in vocab.index and "dog" in vocab.index and "runs" not in vocab.index


def test_retrieval_prefers_captions_with_the_sure_tags() -> None:
    words = ("bed", "dog", "toilet")
    captions = ["a dog on a bed", "a white toilet in a bathroom", "a dog in a bathroom",
                "a bed with white sheets", "a cat"]
    tags = np.array([[0.1, 0.0, 0.8], [0.5, 0.4, 0.0], [0.1, 0.1, 0.05]], dtype=np.float32)
    got = retrieve(tags, captions, words, RetrievalConfig(per_photo=1, min_top_tag=0.3))
    assert got == [["a white toilet in a bathroom"], ["a dog on a bed"], []]


def test_confidence_rises_with_score_and_tag_agreement() -> None:
    # two calibration photos: one like a dog in snow (captioned well), one unlike it (poorly)
    memory = Neighbours.build(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), np.array([1.2, 0.1]), k=1)
    phrases = Phrases.build([["a", "dog", "runs"]] * 3)
    cal = Calibration((1.0, 0.0, 1.0, 0.0, 0.0, 1.0, -1.0, 0.0, -1.0, 1.0), 0.0, (0.0,) * 10,
                      (1.0,) * 10, np.zeros(3, np.float32), np.ones(3, np.float32), memory, phrases)
    probs, words = np.array([0.8, 0.1]), ["dog", "ball"]
    nbest = [("a dog runs", -0.3), ("a dog is running", -0.9)]
    near = cal.photo_signals(np.array([0.9, 0.1, 0.0]))
    sure = caption_signals(-0.3, nbest, "a dog runs".split(), probs, words, phrases, near)
    off = caption_signals(-0.3, nbest, "a man runs".split(), probs, words, phrases, near)
    unlike = caption_signals(-0.3, nbest, "a dog runs".split(), probs, words, phrases,
                             cal.photo_signals(np.array([0.1, 0.9, 0.0])))
    assert cal.confidence(sure) > cal.confidence(off) and cal.confidence(sure) > cal.confidence(unlike)
    assert 0.0 < cal.confidence(off) < 1.0
    assert near[1] == pytest.approx(1.2) and memory.expected_score(np.array([1.0, 0, 0]), exclude=0) == \
        pytest.approx(0.1)
    assert feature_distance(np.array([1.0, 1.0, 1.0]), np.zeros(3), np.ones(3)) == pytest.approx(1.0)
    again = Calibration.from_json(json.loads(json.dumps(cal.to_json())))
    assert again.weights == cal.weights and again.neighbours.scores.tolist() == pytest.approx([1.2, 0.1])
    assert again.phrases.counts == {"a dog runs": 3}


def test_phrase_typicality_counts_training_trigrams() -> None:
    """Template phrases score high, unseen ones 0; short captions and bad tables are handled."""
    phrases = Phrases.build([["a", "man", "in", "a", "red", "shirt"]] * 4 + [["a", "cat", "sits"]])
    assert set(phrases.counts) == {"a man in", "man in a", "in a red", "a red shirt"}
    assert phrases.typicality(["a", "man", "in", "a", "hat"]) == pytest.approx(
        (2 * np.log(5) + 0.0) / 3)
    assert phrases.typicality(["a", "dog"]) == 0.0
    for bad in (["a man in"], {"a man in": -1}, {"a man in": 2.5}, {"a man in": True}):
        with pytest.raises(ValueError):
            Phrases.from_json(bad)


def test_tagged_decoder_exports_with_parity_and_captions_carry_tags(tmp_path_factory, flickr_dir
                                                                   ) -> None:
    """A decoder that reads tags goes through export (parity checked) and `Captioner` returns
    tags with probabilities; the dog photo's best tag is "dog"."""
    from captioner.captioner import Captioner
    from tests.test_keywords import DOG_PHOTO, session_tagged_bundle

    cap = Captioner(session_tagged_bundle(tmp_path_factory, flickr_dir), provider="cpu", variant="fp32")
    assert cap.reads_tags and cap.bundle.tag_words == load_tag_table().words
    ((_, result),) = list(cap.caption_files([flickr_dir / "images" / DOG_PHOTO]))
    assert result.tags and result.tags[0].word == "dog" and result.tags[0].p > 0.5
    assert result.confidence is None  # not calibrated: no number pretends to be one


def test_articles_follow_the_next_word() -> None:
    from captioner.wording import fix_articles

    assert fix_articles("a man plays a accordion".split()) == "a man plays an accordion".split()
    assert fix_articles("an dog and a unicycle near an hour".split()) == \
        "a dog and a unicycle near an hour".split()
    assert fix_articles(["a"]) == ["a"]


def test_teacher_captions_keep_the_sure_photos_of_the_list(tmp_path: Path) -> None:
    """Self-training rows: only photos of the list, with a confidence at or above the bar, each
    with the teacher's n-best captions (its caption alone when it gave no alternatives)."""
    from training.pseudo import teacher_captioned

    photos = [tmp_path / f"{name}.jpg" for name in ("a", "b", "c")]
    records = [
        {"file": str(photos[2]), "caption": "a cat on a bed", "confidence": 0.8,
         "alternatives": [{"caption": "a cat on a bed"}, {"caption": "a cat lying on a bed"}]},
        {"file": str(photos[0]), "caption": "a man in a kitchen", "confidence": 0.59},
        {"file": str(tmp_path / "elsewhere.jpg"), "caption": "a dog", "confidence": 0.9},
        {"file": str(photos[1]), "caption": "a red bus", "confidence": 0.6},
        {"file": str(photos[1]), "caption": "unreadable", "confidence": None},
    ]
    rows, captions = teacher_captioned(records, photos, min_confidence=0.6)
    assert rows == [2, 1]
    assert captions == [["a cat on a bed", "a cat lying on a bed"], ["a red bus"]]
