"""Beam search against brute force on a tiny fixed model, plus the blocking rules."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from captioner.search import (
    SearchConfig,
    beam_search,
    blocked_next_tokens,
    has_repeated_phrase,
)

V, START, END, UNK = 7, 1, 2, 3
WORDS = (4, 5, 6)
BANNED = (0, START, UNK)
N_POS = 4


def _logp_for(code: int, seed: int) -> np.ndarray:
    logits = np.random.default_rng(code * 7919 + seed).normal(size=V) * 2.0
    return logits - np.log(np.exp(logits).sum())


def make_step(seed: int):
    """A fixed 'model': the next-token distribution is a pseudo-random function of the prefix,
    carried in h[:, 0] as a base-8 code."""

    def step(token, h, c, feats, keys):
        codes = h[:, 0].astype(np.int64) * 8 + token.astype(np.int64)
        logp = np.stack([_logp_for(int(code), seed) for code in codes]).astype(np.float32)
        h_out = h.copy()
        h_out[:, 0] = codes
        alpha = np.full((len(token), N_POS), 1.0 / N_POS, dtype=np.float32)
        return logp, h_out, c, alpha

    return step


def brute_force(seed: int, max_length: int, penalty: float) -> list[tuple[tuple[int, ...], float]]:
    """Every caption of at most max_length-1 words, scored like the search scores them."""
    out = []
    for n in range(max_length):
        for words in itertools.product(WORDS, repeat=n):
            code, total = 0, 0.0
            for i, tok in enumerate((START, *words)):
                code = code * 8 + tok
                nxt = words[i] if i < len(words) else END
                total += float(_logp_for(code, seed)[nxt])
            out.append((tuple(words), total / (max(n + 1, 1) ** penalty)))
    return sorted(out, key=lambda x: -x[1])


def run_search(seed: int, cfg: SearchConfig, batch: int = 1):
    zeros = np.zeros((batch, N_POS, 2), dtype=np.float32)
    h0 = np.zeros((batch, 3), dtype=np.float32)
    return beam_search(make_step(seed), zeros, zeros, h0, h0.copy(), START, END, cfg)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_wide_beam_equals_brute_force(seed: int) -> None:
    max_length, penalty = 4, 0.7
    cfg = SearchConfig(beam_size=27, max_length=max_length, n_best=5, length_penalty=penalty,
                       block_ngram=0, banned=BANNED)
    (hyps,) = run_search(seed, cfg)
    expected = brute_force(seed, max_length, penalty)[:5]
    assert [tuple(h.tokens) for h in hyps] == [words for words, _ in expected]
    np.testing.assert_allclose([h.score for h in hyps], [s for _, s in expected], rtol=1e-5)


@pytest.mark.parametrize("seed", [0, 5])
def test_greedy_follows_the_argmax(seed: int) -> None:
    cfg = SearchConfig(beam_size=1, max_length=6, n_best=1, block_ngram=0, banned=BANNED)
    (hyps,) = run_search(seed, cfg)
    code, words = 0, []
    token = START
    for _ in range(6):
        code = code * 8 + token
        logp = _logp_for(code, seed)
        logp[list(BANNED)] = -np.inf
        token = int(np.argmax(logp))
        if token == END or len(words) == 5:
            break
        words.append(token)
    assert hyps[0].tokens == words


def test_images_in_one_batch_match_images_alone() -> None:
    cfg = SearchConfig(beam_size=3, max_length=5, n_best=3, banned=BANNED)
    batch = np.zeros((3, N_POS, 2), dtype=np.float32)
    h0 = np.zeros((3, 3), dtype=np.float32)
    h0[:, 0] = [0, 0, 0]
    together = beam_search(make_step(4), batch, batch, h0, h0.copy(), START, END, cfg)
    (alone,) = run_search(4, cfg)
    for hyps in together:
        assert [h.tokens for h in hyps] == [h.tokens for h in alone]


def test_attention_is_returned_per_word() -> None:
    cfg = SearchConfig(beam_size=2, max_length=6, banned=BANNED)
    (hyps,) = run_search(1, cfg)
    for h in hyps:
        assert h.alphas.shape == (len(h.tokens), N_POS)


def _repeat_loving_step(token, h, c, feats, keys):
    """Prefers <unk>, then repeating word 4, then word 5: what the blocking must stop."""
    logp = np.full((len(token), V), -20.0, dtype=np.float32)
    logp[:, UNK] = -0.1
    logp[:, 4] = -0.5
    logp[:, 5] = -1.0
    logp[:, 6] = -1.5
    logp[:, END] = -8.0
    return logp, h, c, np.full((len(token), N_POS), 0.25, dtype=np.float32)


def test_unknown_words_and_repeats_are_blocked() -> None:
    cfg = SearchConfig(beam_size=3, max_length=12, block_ngram=3, banned=BANNED,
                       function_words=frozenset(WORDS))
    zeros = np.zeros((1, N_POS, 2), dtype=np.float32)
    h0 = np.zeros((1, 3), dtype=np.float32)
    (hyps,) = beam_search(_repeat_loving_step, zeros, zeros, h0, h0, START, END, cfg)
    names = {4: "a", 5: "the", 6: "in"}  # function words: only the n-gram rule applies
    for h in hyps:
        assert UNK not in h.tokens
        assert not has_repeated_phrase([names[t] for t in h.tokens])


def test_blocked_next_tokens() -> None:
    seq = [10, 11, 12, 10, 11]
    assert blocked_next_tokens(seq, 3) == {11, 12}  # repeat of 11, and "10 11 12" again
    assert blocked_next_tokens([], 3) == set()
    assert blocked_next_tokens(seq, 0) == set()


def test_has_repeated_phrase() -> None:
    assert has_repeated_phrase("a dog sitting on a table on a table".split())
    assert has_repeated_phrase("a a dog".split())
    assert not has_repeated_phrase("a man in a red shirt stands in a field".split())


def test_content_word_pairs_may_not_repeat() -> None:
    assert has_repeated_phrase("a man riding a bicycle on a bicycle".split())
    assert not has_repeated_phrase("a dog in a field jumps in a pond".split())


def _bicycle_loving_step(token, h, c, feats, keys):
    """Word 4 = 'a' (function), 5 = 'bicycle', 6 = 'on' (function): prefers 'a bicycle on a
    bicycle ...' over ending."""
    logp = np.full((len(token), V), -30.0, dtype=np.float32)
    last = token.astype(np.int64)
    nxt = np.where(last == 4, 5, np.where(last == 5, 6, 4))
    logp[np.arange(len(token)), nxt] = -0.05
    logp[:, END] = -3.0
    return logp, h, c, np.full((len(token), N_POS), 0.25, dtype=np.float32)


def test_search_blocks_a_repeated_content_pair() -> None:
    zeros = np.zeros((1, N_POS, 2), dtype=np.float32)
    h0 = np.zeros((1, 3), dtype=np.float32)
    names = {4: "a", 5: "bicycle", 6: "on"}
    cfg = SearchConfig(beam_size=1, max_length=10, block_ngram=3, banned=BANNED,
                       function_words=frozenset({4, 6}))
    (hyps,) = beam_search(_bicycle_loving_step, zeros, zeros, h0, h0, START, END, cfg)
    for hyp in hyps:
        assert not has_repeated_phrase([names.get(t, str(t)) for t in hyp.tokens])
    assert hyps[0].tokens == [4, 5, 6, 4]  # 'a bicycle on a' then the pair is blocked


# 'a couch and a white couch': each pair is new, but 'couch' comes twice
COUCH_PLAN = (4, 5, 6, 4, 7, 5)  # a couch and a white couch


def _couch_loving_step(token, h, c, feats, keys):
    """Follows COUCH_PLAN by position (carried in h[:, 0]); ending costs more than any word."""
    logp = np.full((len(token), 9), -30.0, dtype=np.float32)
    pos = h[:, 0].astype(np.int64)
    for row, p in enumerate(pos):
        if p < len(COUCH_PLAN):
            logp[row, COUCH_PLAN[p]] = -0.05
    logp[:, END] = -3.0
    h_out = h.copy()
    h_out[:, 0] += 1
    return logp, h_out, c, np.full((len(token), N_POS), 0.25, dtype=np.float32)


def test_search_blocks_a_repeated_content_word() -> None:
    zeros = np.zeros((1, N_POS, 2), dtype=np.float32)
    h0 = np.zeros((1, 3), dtype=np.float32)
    cfg = SearchConfig(beam_size=1, max_length=10, block_ngram=3, banned=BANNED,
                       function_words=frozenset({4, 6}))
    (hyps,) = beam_search(_couch_loving_step, zeros, zeros, h0, h0, START, END, cfg)
    assert hyps[0].tokens == [4, 5, 6, 4, 7]  # the second 'couch' is blocked: it ends instead
    unblocked = SearchConfig(beam_size=1, max_length=10, block_ngram=0, banned=BANNED)
    (free,) = beam_search(_couch_loving_step, zeros, zeros, h0, h0, START, END, unblocked)
    assert free[0].tokens == list(COUCH_PLAN)

