"""LSTM decoder with soft (Bahdanau) attention over a CNN feature grid: Show, Attend and Tell.

h/c start from the mean feature, the context vector is gated by the hidden state (beta), and
the loss adds the doubly stochastic attention regulariser. The output layer is the paper's
"deep output" (embedding + hidden + context), tied to the word embedding.

With `tag_count` > 0 the decoder also reads the image's tag word probabilities (the encoder's
ImageNet head summed per everyday word, training/tags.py), in two ways (LSTM-C, Yao et al.
2017): their embedding-weighted mean is an attribute input to h0/c0 and to every step, and a
copy gate mixes the tag distribution into the output, so that a word the paired photos never
showed ("giraffe", known from the text prior) can be written when the classifier sees it.

The module is split the way the ONNX bundle is: `encode` (once per image: project the grid,
precompute the attention keys, init h/c) and `step` (one word). Training runs the same `step`,
which returns log-probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import Enum

import torch
import torch.nn.functional as F
from torch import nn


class DecoderKind(str, Enum):
    """Which recurrent core the decoder has (stored in checkpoints as its value)."""

    SAT = "sat"  # Show, Attend and Tell: one LSTM, gated context
    UPDOWN = "updown"  # Up-Down (Anderson et al. 2018): an attention LSTM and a language LSTM


@dataclass
class DecoderConfig:
    vocab_size: int
    feature_dim: int = 1280  # channels of the backbone grid
    grid_size: int = 49  # positions in the grid
    embed_dim: int = 512
    hidden_size: int = 512
    attention_dim: int = 512
    dropout: float = 0.5
    tag_count: int = 0  # tag words read as input (0: none)
    kind: DecoderKind = DecoderKind.SAT

    def __post_init__(self) -> None:
        self.kind = DecoderKind(self.kind)  # checkpoints hold the plain string

    def to_dict(self) -> dict:
        return {**asdict(self), "kind": self.kind.value}


class CaptionDecoder(nn.Module):
    tag_ids: torch.Tensor  # (T,) vocabulary ids of the tag words (a buffer, with tag_count)

    def __init__(self, cfg: DecoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        e, h, a = cfg.embed_dim, cfg.hidden_size, cfg.attention_dim
        self.feat_proj = nn.Linear(cfg.feature_dim, e)
        self.att_keys = nn.Linear(e, a)
        self.att_query = nn.Linear(h, a)
        self.att_score = nn.Linear(a, 1)
        self.init_h = nn.Linear(e, h)
        self.init_c = nn.Linear(e, h)
        self.gate = nn.Linear(h, e)
        self.embed = nn.Embedding(cfg.vocab_size, e)
        self.lstm = nn.LSTMCell(2 * e, h)
        self.out_hidden = nn.Linear(h, e)
        self.out_context = nn.Linear(e, e, bias=False)
        self.out_bias = nn.Parameter(torch.zeros(cfg.vocab_size))
        self.drop = nn.Dropout(cfg.dropout)
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)  # tied to the output: keep logits small
        if cfg.tag_count:
            self.register_buffer("tag_ids", torch.zeros(cfg.tag_count, dtype=torch.long))
            self.attr_proj = nn.Linear(e, e)
            self.lstm = nn.LSTMCell(3 * e, h)
            self.copy_gate = nn.Linear(h + 2 * e + 1, 1)

    def set_tag_words(self, ids: list[int]) -> None:
        """Vocabulary ids of the tag words, in the order of the tag probabilities."""
        self.tag_ids.copy_(torch.tensor(ids, dtype=torch.long))

    def attribute(self, tags: torch.Tensor) -> torch.Tensor:
        """Tag probabilities (B, T) -> attribute vector (B, E): their words' mean embedding."""
        weights = tags / tags.sum(dim=1, keepdim=True).clamp_min(1e-6)
        vec = weights @ self.embed.weight[self.tag_ids]
        return torch.tanh(self.attr_proj(vec)) * tags.sum(dim=1, keepdim=True).clamp(max=1.0)

    # --- once per image -------------------------------------------------------------------
    def encode(self, grid: torch.Tensor, tags: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """Backbone grid (B, N, D) -> features (B, N, E), attention keys (B, N, A), h0, c0."""
        feats = self.drop(F.relu(self.feat_proj(grid)))
        keys = self.att_keys(feats)
        mean = feats.mean(dim=1)
        if tags is not None:
            mean = mean + self.attribute(tags)
        return feats, keys, torch.tanh(self.init_h(mean)), torch.tanh(self.init_c(mean))

    # --- once per word --------------------------------------------------------------------
    def step(
        self, token: torch.Tensor, h: torch.Tensor, c: torch.Tensor,
        feats: torch.Tensor, keys: torch.Tensor, tags: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One word: previous token and state -> log-probs (B, V), h, c, attention (B, N)."""
        emb = self.embed(token)
        scores = self.att_score(torch.tanh(keys + self.att_query(h).unsqueeze(1))).squeeze(-1)
        alpha = torch.softmax(scores, dim=1)
        context = torch.bmm(alpha.unsqueeze(1), feats).squeeze(1)
        context = torch.sigmoid(self.gate(h)) * context
        if tags is None:
            h, c = self.lstm(torch.cat([emb, context], dim=1), (h, c))
        else:
            attr = self.attribute(tags)
            h, c = self.lstm(torch.cat([emb, context, attr], dim=1), (h, c))
        return self._output(emb, h, context, tags), h, c, alpha

    @property
    def state_size(self) -> int:
        """Width of the h and c the step passes on (the ONNX graphs' "hidden" axis)."""
        return self.cfg.hidden_size

    def _output(self, emb: torch.Tensor, h: torch.Tensor, context: torch.Tensor,
                tags: torch.Tensor | None) -> torch.Tensor:
        """Deep output tied to the embedding, then the copy mixture: log-probs (B, V)."""
        deep = emb + self.out_hidden(self.drop(h)) + self.out_context(context)
        logits = F.linear(self.drop(deep), self.embed.weight, self.out_bias)
        logp = torch.log_softmax(logits.float(), dim=1)
        if tags is not None:
            logp = self._copy(logp, h, context, emb, tags)
        return logp

    def _copy(self, logp: torch.Tensor, h: torch.Tensor, context: torch.Tensor, emb: torch.Tensor,
              tags: torch.Tensor) -> torch.Tensor:
        """Mix the tag words' distribution into the output: p = (1-g) p_vocab + g p_tags."""
        total = tags.sum(dim=1, keepdim=True)
        gate_in = torch.cat([h, context, emb, total.to(h.dtype)], dim=1)
        # the two runtimes must agree on the log of the mixture, so the gate is kept inside
        # [1e-6, 1 - 1e-6] and written as 1 / (1 + e^-x): onnxruntime's Sigmoid kernel is an
        # approximation whose relative error reaches 2e-4 at x = -6 and 2 % at x = -10 (log g
        # then differs as much, and a fine-tuned tagged model failed parity), where its Exp is
        # exact to 1e-7. x is clamped first so that e^-x never overflows (g is clamped anyway).
        logit = self.copy_gate(gate_in).float().clamp(-20.0, 20.0)
        g = (torch.reciprocal(1 + torch.exp(-logit)) * (total > 1e-4)).clamp(1e-6, 1 - 1e-6)
        dist = torch.zeros_like(logp).index_copy(1, self.tag_ids, tags.float() / total.clamp_min(1e-6))
        a = torch.log1p(-g) + logp
        b = torch.log(g) + torch.log(dist.clamp_min(1e-12))
        top = torch.maximum(a, b)  # log(exp(a) + exp(b)), written out: ONNX has no logaddexp
        return top + torch.log(torch.exp(a - top) + torch.exp(b - top))

    # --- teacher forcing ------------------------------------------------------------------
    def forward(
        self, grid: torch.Tensor, captions: torch.Tensor, lengths: torch.Tensor,
        tags: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Teacher-forced pass over a batch sorted by length (longest first).

        captions: (B, T) token ids starting with <start>; lengths: tokens incl. <start>/<end>.
        Only rows still active are decoded at each step. Returns the log-probs of every target
        token packed time-major (matching `packed_targets`), and the per-row attention sums.
        """
        steps = lengths - 1
        feats, keys, h, c = self.encode(grid, tags)
        alpha_sum = grid.new_zeros(grid.shape[0], grid.shape[1])
        outputs = []
        for t in range(int(steps[0])):
            active = int((steps > t).sum())
            logits, h_new, c_new, alpha = self.step(
                captions[:active, t], h[:active], c[:active], feats[:active], keys[:active],
                None if tags is None else tags[:active],
            )
            h = torch.cat([h_new, h[active:]]) if active < h.shape[0] else h_new
            c = torch.cat([c_new, c[active:]]) if active < c.shape[0] else c_new
            alpha_sum = torch.cat([alpha_sum[:active] + alpha.float(), alpha_sum[active:]])
            outputs.append(logits)
        return torch.cat(outputs), alpha_sum, steps


class UpDownDecoder(CaptionDecoder):
    """Up-Down (Anderson et al. 2018) over the same grid, tags and output layer.

    An attention LSTM reads the language LSTM's last state, the mean feature, the word (and the
    tag attribute) and drives the attention; a language LSTM reads the attended context and
    the attention LSTM's state and feeds the output. h and c hold both LSTMs' states side by
    side, (B, 2H), so the ONNX step keeps the bundle's interface.
    """

    def __init__(self, cfg: DecoderConfig) -> None:
        super().__init__(cfg)
        e, h = cfg.embed_dim, cfg.hidden_size
        del self.gate  # Up-Down attends without Show, Attend and Tell's beta gate
        self.lstm = nn.LSTMCell(h + 2 * e + (e if cfg.tag_count else 0), h)  # attention LSTM
        self.lang_lstm = nn.LSTMCell(e + h, h)
        self.init_h = nn.Linear(e, 2 * h)
        self.init_c = nn.Linear(e, 2 * h)

    @property
    def state_size(self) -> int:
        return 2 * self.cfg.hidden_size

    def step(
        self, token: torch.Tensor, h: torch.Tensor, c: torch.Tensor,
        feats: torch.Tensor, keys: torch.Tensor, tags: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        size = self.cfg.hidden_size
        h_att, h_lang, c_att, c_lang = h[:, :size], h[:, size:], c[:, :size], c[:, size:]
        emb = self.embed(token)
        parts = [h_lang, feats.mean(dim=1), emb]
        if tags is not None:
            parts.append(self.attribute(tags))
        h_att, c_att = self.lstm(torch.cat(parts, dim=1), (h_att, c_att))
        scores = self.att_score(torch.tanh(keys + self.att_query(h_att).unsqueeze(1))).squeeze(-1)
        alpha = torch.softmax(scores, dim=1)
        context = torch.bmm(alpha.unsqueeze(1), feats).squeeze(1)
        h_lang, c_lang = self.lang_lstm(torch.cat([context, h_att], dim=1), (h_lang, c_lang))
        logp = self._output(emb, h_lang, context, tags)
        return logp, torch.cat([h_att, h_lang], dim=1), torch.cat([c_att, c_lang], dim=1), alpha


def build_decoder(cfg: DecoderConfig) -> CaptionDecoder:
    """The decoder `cfg.kind` names."""
    return UpDownDecoder(cfg) if cfg.kind is DecoderKind.UPDOWN else CaptionDecoder(cfg)


def packed_targets(captions: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Targets (tokens after <start>) in the same time-major packed order as `forward`."""
    steps = lengths - 1
    return torch.cat([captions[: int((steps > t).sum()), t + 1] for t in range(int(steps[0]))])


def attention_regulariser(alpha_sum: torch.Tensor) -> torch.Tensor:
    """Doubly stochastic attention: every grid cell should be attended about once overall
    (averaged over cells, as in the reference implementations, so it stays near 1 or below)."""
    return ((1.0 - alpha_sum) ** 2).mean()


@torch.no_grad()
def greedy_decode(
    model: CaptionDecoder, grid: torch.Tensor, start_id: int, max_length: int,
    tags: torch.Tensor | None = None, banned: Sequence[int] = (),
) -> torch.Tensor:
    """Batch greedy decoding in torch (fast validation); returns (B, max_length) token ids.

    `banned` ids are never chosen, as in the app's search (which never writes <unk>), so that
    validation scores what ships.
    """
    feats, keys, h, c = model.encode(grid, tags)
    token = torch.full((grid.shape[0],), start_id, dtype=torch.long)
    out = []
    never = torch.tensor(list(banned), dtype=torch.long)
    for _ in range(max_length):
        logits, h, c, _ = model.step(token, h, c, feats, keys, tags)
        if len(never):
            logits = logits.index_fill(1, never, -1e9)
        token = logits.argmax(dim=1)
        out.append(token)
    return torch.stack(out, dim=1)


def sample_decode(
    model: CaptionDecoder, grid: torch.Tensor, start_id: int, end_id: int, max_length: int,
    n: int, banned: list[int] | None = None, tags: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Draw n captions per image (for SCST).

    Returns tokens (B*n, L), each row's summed log-probability, and its token count (words
    plus <end>), so the loss can be normalised per token rather than per caption.
    """
    feats, keys, h, c = model.encode(grid, tags)
    feats, keys, h, c = (x.repeat_interleave(n, dim=0) for x in (feats, keys, h, c))
    tags = None if tags is None else tags.repeat_interleave(n, dim=0)
    rows = feats.shape[0]
    token = torch.full((rows,), start_id, dtype=torch.long)
    done = torch.zeros(rows, dtype=torch.bool)
    logprob = grid.new_zeros(rows, dtype=torch.float32)
    counts = torch.zeros(rows)
    tokens = []
    for _ in range(max_length):
        logits, h, c, _ = model.step(token, h, c, feats, keys, tags)
        logits = logits.float()
        if banned:  # the policy never emits these: renormalise over the rest
            logits = logits.index_fill(1, torch.tensor(banned), -1e9)
        logp = torch.log_softmax(logits, dim=1)
        token = torch.multinomial(logp.detach().exp(), 1).squeeze(1)
        token = torch.where(done, torch.zeros_like(token), token)
        logprob = logprob + torch.where(done, 0.0, logp.gather(1, token[:, None]).squeeze(1))
        counts = counts + (~done).float()
        tokens.append(token)
        done = done | (token == end_id)
        if bool(done.all()):
            break
    return torch.stack(tokens, dim=1), logprob, counts
