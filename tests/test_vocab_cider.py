"""Tokenizer/vocabulary and the fast CIDEr-D used for validation and as the SCST reward."""

from __future__ import annotations

import pytest

from captioner.vocab import Vocabulary, tokenize
from training.cider import CiderD


def test_tokenize_and_round_trip() -> None:
    assert tokenize("A dog's ball , in the Park .") == ["a", "dog's", "ball", "in", "the", "park"]
    vocab = Vocabulary.build(["a dog runs", "a dog sits", "a cat"], min_count=2)
    assert vocab.words[:4] == ["<pad>", "<start>", "<end>", "<unk>"]
    assert set(vocab.words[4:]) == {"a", "dog"}
    ids = vocab.encode("A dog flies")
    assert ids[0] == vocab.start_id and ids[-1] == vocab.end_id and vocab.unk_id in ids
    assert vocab.decode(ids) == ["a", "dog", "<unk>"]
    with pytest.raises(ValueError):
        Vocabulary(["a", "b"])


def test_cider_d_orders_captions_sensibly() -> None:
    refs = [[tokenize(c) for c in ("a dog runs on the grass", "a brown dog running on grass")],
            [tokenize(c) for c in ("a man rides a bike", "a person riding a bicycle")],
            [tokenize(c) for c in ("two children play in the water", "kids splash in a pool")]]
    cider = CiderD(refs)
    exact = cider.score(tokenize("a dog runs on the grass"), refs[0])
    close = cider.score(tokenize("a dog running on the grass"), refs[0])
    wrong = cider.score(tokenize("a man rides a bike"), refs[0])
    assert exact > close > wrong >= 0.0
    short = cider.score(tokenize("dog"), refs[0])
    assert short < close  # the length penalty works
