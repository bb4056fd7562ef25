"""Greedy and beam search in numpy over a one-step decoder, batched over images and beams.

All images of a batch and all their beams advance as one (B*K)-row batch through the step
graph. Hypotheses are length-normalised; the n best of each image come back with their
scores and the attention map of every word. Unknown words and repeated phrases are blocked
in the search itself, because that is where users would otherwise see them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

StepFn = Callable[
    [np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
]
NEG_INF = -1e9


@dataclass(frozen=True)
class SearchConfig:
    beam_size: int = 3
    max_length: int = 20
    n_best: int = 5
    length_penalty: float = 0.7  # score = logprob / len ** length_penalty
    block_ngram: int = 3  # no n-gram of this size twice; 0 turns the blocking off
    banned: Sequence[int] = ()  # token ids never produced (<pad>, <start>, <unk>)


@dataclass
class Hypothesis:
    tokens: list[int]  # words only, no <start>/<end>
    logprob: float
    score: float
    alphas: np.ndarray = field(repr=False)  # (len(tokens), N)


def blocked_next_tokens(seq: Sequence[int], n: int) -> set[int]:
    """Tokens that would repeat the previous word or complete an n-gram already in seq."""
    if n <= 0 or not seq:
        return set()
    blocked = {seq[-1]}
    if len(seq) >= n - 1:
        prefix = tuple(seq[len(seq) - (n - 1):]) if n > 1 else ()
        for i in range(len(seq) - n + 1):
            if tuple(seq[i:i + n - 1]) == prefix:
                blocked.add(seq[i + n - 1])
    return blocked


def has_repeated_phrase(words: Sequence[str], n: int = 3) -> bool:
    """True when a word repeats at once or an n-gram occurs twice (what the search blocks)."""
    if any(a == b for a, b in zip(words, words[1:])):
        return True
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return len(grams) != len(set(grams))


def _normalised(logprob: float, length: int, penalty: float) -> float:
    return logprob / (max(length, 1) ** penalty)


def beam_search(
    step: StepFn, feats: np.ndarray, keys: np.ndarray, h0: np.ndarray, c0: np.ndarray,
    start_id: int, end_id: int, cfg: SearchConfig,
) -> list[list[Hypothesis]]:
    """Return, for each of the B images, up to n_best hypotheses, best first."""
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
                        list(seq), float(score), _normalised(score, len(seq) + 1, cfg.length_penalty),
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
        seqs = [seqs[p] + [int(tok)] for p, tok in zip(parents, next_tokens)]
        alpha_hist = np.concatenate([alpha_hist[parents], alpha[parents][:, None]], axis=1)
        h, c, tokens, beam_scores = h[parents], c[parents], next_tokens, next_scores

    results = []
    for i in range(b):
        hyps = sorted(finished[i], key=lambda hyp: -hyp.score)
        results.append(_unique(hyps)[: cfg.n_best])
    return results


def _unique(hyps: list[Hypothesis]) -> list[Hypothesis]:
    seen: set[tuple[int, ...]] = set()
    out = []
    for hyp in hyps:
        key = tuple(hyp.tokens)
        if key not in seen:
            seen.add(key)
            out.append(hyp)
    return out
