"""The fast beam search (finished images leave the batch, vectorised blocking and top-k)
must find exactly what the straightforward per-row version finds."""

from __future__ import annotations

import numpy as np
import pytest

from captioner.search import (
    NEG_INF,
    Hypothesis,
    SearchConfig,
    StepFn,
    _unique,
    beam_search,
    blocked_mask_rows,
    blocked_next_tokens,
)

V, START, END = 40, 1, 2


def reference_beam_search(
    step: StepFn, feats: np.ndarray, keys: np.ndarray, h0: np.ndarray, c0: np.ndarray,
    start_id: int, end_id: int, cfg: SearchConfig,
) -> list[list[Hypothesis]]:
    """The search as first written: every row stepped to the end, blocking per row in Python."""
    b, k = feats.shape[0], max(1, cfg.beam_size)
    rows = np.repeat(np.arange(b), k)
    feats_k, keys_k, h, c = feats[rows], keys[rows], h0[rows], c0[rows]
    n_positions = feats.shape[1]
    beam_scores = np.full((b, k), NEG_INF, dtype=np.float64)
    beam_scores[:, 0] = 0.0  # one live beam per image at the start: no duplicates
    seqs: list[list[int]] = [[] for _ in range(b * k)]
    alpha_hist = np.zeros((b * k, 0, n_positions), dtype=np.float32)
    tokens = np.full(b * k, start_id, dtype=np.int64)
    finished: list[list[Hypothesis]] = [[] for _ in range(b)]
    done = np.zeros(b, dtype=bool)
    banned = np.asarray(list(cfg.banned), dtype=np.int64)

    for t in range(cfg.max_length):
        logp, h, c, alpha = step(tokens, h, c, feats_k, keys_k)
        logp = logp.astype(np.float64)
        if banned.size:
            logp[:, banned] = NEG_INF
        for r, seq in enumerate(seqs):
            blocked = blocked_next_tokens(seq, cfg.block_ngram)
            if blocked:
                logp[r, list(blocked)] = NEG_INF
        if t == cfg.max_length - 1:  # the last step may only end the caption
            keep = logp[:, end_id].copy()
            logp[:] = NEG_INF
            logp[:, end_id] = keep
        total = beam_scores.reshape(-1, 1) + logp  # (B*K, V)
        vocab = total.shape[1]
        total = total.reshape(b, k * vocab)
        top = np.argsort(-total, axis=1)[:, : 2 * k]
        parents = np.zeros(b * k, dtype=np.int64)
        next_tokens = np.full(b * k, end_id, dtype=np.int64)
        next_scores = np.full((b, k), NEG_INF, dtype=np.float64)
        for i in range(b):
            if done[i]:
                parents[i * k:(i + 1) * k] = i * k
                continue
            live = 0
            for flat in top[i]:
                score = total[i, flat]
                if score <= NEG_INF / 2:
                    break
                parent, token = i * k + flat // vocab, int(flat % vocab)
                if token == end_id:
                    seq = seqs[parent]
                    hist = np.concatenate([alpha_hist[parent], alpha[parent][None]])
                    finished[i].append(Hypothesis(
                        list(seq), float(score), score / (max(len(seq) + 1, 1) ** cfg.length_penalty),
                        hist[: len(seq)],
                    ))
                    continue
                slot = i * k + live
                parents[slot], next_tokens[slot], next_scores[i, live] = parent, token, score
                live += 1
                if live == k:
                    break
            if len(finished[i]) >= k or live == 0:
                done[i] = True
        if done.all():
            break
        seqs = [seqs[p] + [int(tok)] for p, tok in zip(parents, next_tokens, strict=True)]
        alpha_hist = np.concatenate([alpha_hist[parents], alpha[parents][:, None]], axis=1)
        h, c, tokens, beam_scores = h[parents], c[parents], next_tokens, next_scores

    results = []
    for i in range(b):
        hyps = sorted(finished[i], key=lambda hyp: -hyp.score)
        results.append(_unique(hyps)[: cfg.n_best])
    return results


def make_step(seed: int, calls: list[int] | None = None):
    """A small recurrent 'model' whose next-token distribution depends on the whole prefix."""
    weights = np.random.default_rng(seed).normal(size=(V, 8, V)) * 2.5

    def step(token, h, c, feats, keys):
        if calls is not None:
            calls.append(len(token))
        state = np.tanh(h[:, :8] * 0.9 + np.eye(8)[token % 8] + feats[:, 0, :8])
        logits = np.einsum("rd,rdv->rv", state, weights[token])
        logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
        h_out = h.copy()
        h_out[:, :8] = state
        alpha = np.abs(state[:, :5]) / np.abs(state[:, :5]).sum(1, keepdims=True)
        return logp.astype(np.float32), h_out.astype(np.float32), c, alpha.astype(np.float32)

    return step


@pytest.mark.parametrize("seed", range(40))
def test_fast_search_equals_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    b, k, length = int(rng.integers(1, 7)), int(rng.integers(1, 6)), int(rng.integers(2, 14))
    cfg = SearchConfig(beam_size=k, max_length=length, n_best=5,
                       length_penalty=float(rng.uniform(0, 1.2)), block_ngram=int(rng.integers(0, 4)),
                       banned=(0, START, 3))
    feats = rng.normal(size=(b, 5, 8)).astype(np.float32)
    h0 = rng.normal(size=(b, 8)).astype(np.float32)
    fast = beam_search(make_step(seed), feats, feats, h0, h0, START, END, cfg)
    slow = reference_beam_search(make_step(seed), feats, feats, h0, h0, START, END, cfg)
    assert len(fast) == len(slow) == b
    for got, want in zip(fast, slow, strict=True):
        assert [h.tokens for h in got] == [h.tokens for h in want]
        np.testing.assert_allclose([h.score for h in got], [h.score for h in want], rtol=1e-12)
        np.testing.assert_allclose([h.logprob for h in got], [h.logprob for h in want], rtol=1e-12)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g.alphas, w.alphas)


def test_finished_images_leave_the_batch() -> None:
    """Rows stepped shrink once images finish; the results do not change."""
    rng = np.random.default_rng(7)
    b, k = 6, 3
    feats = rng.normal(size=(b, 5, 8)).astype(np.float32)
    h0 = rng.normal(size=(b, 8)).astype(np.float32)
    cfg = SearchConfig(beam_size=k, max_length=12, n_best=3, banned=(0, START, 3))
    calls: list[int] = []
    fast = beam_search(make_step(3, calls), feats, feats, h0, h0, START, END, cfg)
    assert calls[0] == b * k
    assert calls[-1] < b * k and all(n % k == 0 for n in calls)
    assert calls == sorted(calls, reverse=True)
    slow = reference_beam_search(make_step(3), feats, feats, h0, h0, START, END, cfg)
    assert [[h.tokens for h in r] for r in fast] == [[h.tokens for h in r] for r in slow]


def test_empty_batch() -> None:
    feats = np.zeros((0, 5, 8), np.float32)
    h0 = np.zeros((0, 8), np.float32)
    assert beam_search(make_step(0), feats, feats, h0, h0, START, END, SearchConfig()) == []


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4])
def test_vectorised_blocking_matches_per_row(n: int) -> None:
    rng = np.random.default_rng(n)
    for length in range(0, 9):
        seqs = rng.integers(4, 8, size=(30, length))  # few distinct words: many repeats
        rows, tokens = blocked_mask_rows(seqs, n)
        got = [set() for _ in range(len(seqs))]
        for r, t in zip(rows, tokens, strict=True):
            got[int(r)].add(int(t))
        assert got == [blocked_next_tokens(list(map(int, s)), n) for s in seqs]
