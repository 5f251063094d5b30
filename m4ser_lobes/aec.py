"""Selective ASR-error-correction decoder (AEC, Eqs. 4–7; docs/design.md §4).

For each of the K CHANGE tokens of a batch (utterance b, token j) the decoder generates the
correction ``z_1 … z_c`` of that token, conditioned on

* its host vector h_T^(b,j), concatenated to every input embedding (Eq. 4);
* the whole text-encoder output H_T[b] as cross-attention memory, with its text pad mask.

The input embeddings TE(z) + PE(z) are the *text encoder's own* input-embedding tables. They are
not stored in the decoder: the caller passes the embedding function at call time
(``embed_fn(ids [K,L]) -> [K,L,E]``, positions restarting at 0 for every sequence), so each
parameter belongs to exactly one module and DDP sees it once.

Shape legend: B batch, T_t text tokens, D width, E text-embedding width, V vocabulary,
K CHANGE tokens of the batch, L decoder length. Masks: ``*_pad_mask`` is True = padding.

Example
-------
>>> _ = torch.manual_seed(0)
>>> embedding = torch.nn.Embedding(50, 32)          # stands in for BERT's embeddings
>>> text_states = torch.randn(3, 6, 32)             # H_T [B,T_t,D]
>>> text_pad_mask = torch.tensor([[False] * 6, [False] * 4 + [True] * 2, [False] * 6])
>>> host, memory, memory_pad_mask = gather_hosts(
...     text_states, text_pad_mask, torch.tensor([0, 1]), torch.tensor([2, 3]))
>>> decoder = SelectiveAECDecoder(d_model=32, vocab_size=50, nhead=4, dim_feedforward=64)
>>> decoder_input = torch.tensor([[2, 7, 9], [2, 11, 0]])   # [BOS] z_1 … z_c, padded
>>> decoder_pad_mask = torch.tensor([[False, False, False], [False, False, True]])
>>> logits = decoder(decoder_input, decoder_pad_mask, host, memory, memory_pad_mask, embedding)
>>> logits.shape  # [K,L,V]
torch.Size([2, 3, 50])
>>> _ = decoder.eval()
>>> with torch.no_grad():
...     tokens, lengths = decoder.greedy_decode(
...         host, memory, memory_pad_mask, embedding, bos_id=2, eos_id=3, max_len=4)
>>> tokens.shape[0], tokens.shape[1] <= 4, lengths.shape
(2, True, torch.Size([2]))
"""

from __future__ import annotations

import torch
from torch import nn

from m4ser_lobes.text.targets import DEFAULT_AEC_MAX_LEN


def gather_hosts(text_states, text_pad_mask, batch_index, positions):
    """Collect, for each of the K CHANGE tokens, its host vector and its utterance's memory.

    Arguments
    ---------
    text_states : torch.Tensor
        ``[B,T_t,D]`` text-encoder output H_T.
    text_pad_mask : torch.Tensor
        ``[B,T_t]`` bool, True = padding.
    batch_index : torch.Tensor
        ``[K]`` long, utterance b of each CHANGE token.
    positions : torch.Tensor
        ``[K]`` long, token position j of each CHANGE token in that utterance.

    Returns
    -------
    host_states : torch.Tensor
        ``[K,D]`` h_T^(b,j).
    memory : torch.Tensor
        ``[K,T_t,D]`` H_T[b] for each sequence.
    memory_pad_mask : torch.Tensor
        ``[K,T_t]`` text pad mask of H_T[b].

    Example
    -------
    >>> states = torch.arange(12.0).view(2, 3, 2)
    >>> pad_mask = torch.tensor([[False, False, True], [False, False, False]])
    >>> host, memory, mask = gather_hosts(states, pad_mask, torch.tensor([1]), torch.tensor([2]))
    >>> host, memory.shape, mask
    (tensor([[10., 11.]]), torch.Size([1, 3, 2]), tensor([[False, False, False]]))
    """
    if text_states.dim() != 3 or text_pad_mask.shape != text_states.shape[:2]:
        raise ValueError(
            f"gather_hosts expects text_states [B,T_t,D] and text_pad_mask [B,T_t]; got "
            f"{tuple(text_states.shape)} and {tuple(text_pad_mask.shape)}"
        )
    if batch_index.dim() != 1 or positions.shape != batch_index.shape:
        raise ValueError(
            f"batch_index and positions must both be [K]; got {tuple(batch_index.shape)} and "
            f"{tuple(positions.shape)}"
        )
    B, T_t, _ = text_states.shape
    batch_index = batch_index.long().to(text_states.device)
    positions = positions.long().to(text_states.device)
    if batch_index.numel() and (
        batch_index.min() < 0
        or batch_index.max() >= B
        or positions.min() < 0
        or positions.max() >= T_t
    ):
        raise IndexError(
            f"CHANGE positions out of range for text states [B={B}, T_t={T_t}]: batch_index "
            f"{batch_index.tolist()}, positions {positions.tolist()}"
        )
    host_states = text_states[batch_index, positions]  # [K,D]
    memory = text_states.index_select(0, batch_index)  # [K,T_t,D]
    memory_pad_mask = text_pad_mask.index_select(0, batch_index)  # [K,T_t]
    return host_states, memory, memory_pad_mask


class SelectiveAECDecoder(nn.Module):
    """Transformer decoder that writes the correction of each CHANGE token (Eqs. 4–7).

    * Eq. 4: ``e_l = Linear(E + D → D)([TE(z_l) + PE(l) ; h_T^(b,j)])`` — the host vector is
      concatenated to every position; TE/PE come from ``embed_fn`` (the text encoder's own
      input embedding, passed at call time and never stored here).
    * Eq. 5–6: ``num_layers`` post-LN ``nn.TransformerDecoderLayer`` (causal self-attention,
      cross-attention to H_T[b] with its text pad mask), then an untied ``Linear(D, V)``.
    * Eq. 7: the loss is :func:`m4ser_lobes.losses.aec_loss` (token-mean CE).

    All K sequences of a batch go through one batched call. K == 0 is allowed: ``forward``
    returns ``[0,L,V]`` logits without running the transformer layers (which reject empty
    batches) and ties every parameter into the graph with a zero weight, so ``backward`` works
    and every rank of a DDP job produces gradients for the same parameters.

    Parameter count at D = E = 768, V = 30,522, one layer, FFN 2048: 32.5 M (Eq. 4 FC 1.18 M +
    layer 7.88 M + output 23.47 M), cf. Table V's "+AED & AEC" +31.3 M (docs/design.md §11).

    Arguments
    ---------
    d_model : int
        Width D of the text states (and of the decoder).
    vocab_size : int
        Output vocabulary V (the text tokenizer's).
    embed_dim : int, optional
        Width E of ``embed_fn``'s output; None = ``d_model``.
    nhead : int
        Attention heads (12 in the paper; must divide ``d_model``).
    num_layers : int
        Decoder layers (1 in the paper).
    dim_feedforward : int
        FFN width of each decoder layer.
    dropout : float
        Dropout inside the decoder layers.

    Example
    -------
    >>> decoder = SelectiveAECDecoder(d_model=768, vocab_size=30522)
    >>> sum(p.numel() for p in decoder.parameters())
    32529722
    """

    def __init__(
        self,
        d_model,
        vocab_size,
        embed_dim=None,
        nhead=12,
        num_layers=1,
        dim_feedforward=2048,
        dropout=0.1,
    ):
        super().__init__()
        if d_model % nhead:
            raise ValueError(f"nhead={nhead} must divide d_model={d_model}")
        self.d_model = d_model
        self.vocab_size = vocab_size
        self.embed_dim = embed_dim or d_model
        self.input_proj = nn.Linear(self.embed_dim + d_model, d_model)  # Eq. 4
        layer = nn.TransformerDecoderLayer(
            d_model, nhead, dim_feedforward, dropout, batch_first=True
        )
        self.decoder = nn.TransformerDecoder(layer, num_layers)  # Eqs. 5–6
        self.output = nn.Linear(d_model, vocab_size)  # untied

    def _check_inputs(self, host_states, memory, memory_pad_mask):
        K = host_states.shape[0]
        if host_states.dim() != 2 or host_states.shape[-1] != self.d_model:
            raise ValueError(
                f"host_states must be [K,{self.d_model}], got {tuple(host_states.shape)}"
            )
        if memory.dim() != 3 or memory.shape[0] != K or memory.shape[-1] != self.d_model:
            raise ValueError(
                f"memory must be [K={K},T_t,{self.d_model}], got {tuple(memory.shape)}"
            )
        if memory_pad_mask.shape != memory.shape[:2] or memory_pad_mask.dtype != torch.bool:
            raise ValueError(
                f"memory_pad_mask must be a bool tensor {tuple(memory.shape[:2])} "
                f"(True = padding), got {memory_pad_mask.dtype} {tuple(memory_pad_mask.shape)}"
            )

    def forward(
        self,
        decoder_input,
        decoder_pad_mask,
        host_states,
        memory,
        memory_pad_mask,
        embed_fn,
    ):
        """Teacher-forced logits for K decoder sequences (training, Eqs. 4–6).

        Arguments
        ---------
        decoder_input : torch.Tensor
            ``[K,L]`` long ids ``[BOS] z_1 … z_c`` (padded with any id).
        decoder_pad_mask : torch.Tensor
            ``[K,L]`` bool, True = padding (never True at position 0).
        host_states : torch.Tensor
            ``[K,D]`` host vectors h_T^(b,j) (see :func:`gather_hosts`).
        memory : torch.Tensor
            ``[K,T_t,D]`` H_T of each host's utterance.
        memory_pad_mask : torch.Tensor
            ``[K,T_t]`` bool text pad mask, True = padding (each row needs a valid token).
        embed_fn : callable
            ``ids [K,L] -> [K,L,E]``: the text encoder's TE + PE, positions from 0 per row
            (e.g. ``bert.embeddings`` or ``lambda ids: bert.embeddings(input_ids=ids)``).

        Returns
        -------
        torch.Tensor
            ``[K,L,V]`` logits; position l predicts ``z_{l+1}`` (``[EOS]`` after ``z_c``).
        """
        self._check_inputs(host_states, memory, memory_pad_mask)
        K = host_states.shape[0]
        if decoder_input.dim() != 2 or decoder_input.shape[0] != K:
            raise ValueError(
                f"decoder_input must be [K={K},L], got {tuple(decoder_input.shape)}"
            )
        if decoder_pad_mask.shape != decoder_input.shape or decoder_pad_mask.dtype != torch.bool:
            raise ValueError(
                f"decoder_pad_mask must be a bool tensor {tuple(decoder_input.shape)} "
                f"(True = padding), got {decoder_pad_mask.dtype} {tuple(decoder_pad_mask.shape)}"
            )
        L = decoder_input.shape[1]
        if K == 0:
            return self._empty_logits(L, host_states)

        embedded = embed_fn(decoder_input)  # [K,L,E] TE(z) + PE(z)
        if embedded.shape != (K, L, self.embed_dim):
            raise ValueError(
                f"embed_fn must map ids [K,L] to [K,L,{self.embed_dim}] (embed_dim); got "
                f"{tuple(embedded.shape)}"
            )
        host = host_states.unsqueeze(1).expand(-1, L, -1)  # [K,L,D]
        x = self.input_proj(torch.cat([embedded.to(host.dtype), host], dim=-1))  # [K,L,D] Eq. 4
        causal = torch.triu(
            torch.ones(L, L, dtype=torch.bool, device=x.device), diagonal=1
        )  # [L,L] True = may not attend (future)
        hidden = self.decoder(
            x,
            memory,
            tgt_mask=causal,
            tgt_key_padding_mask=decoder_pad_mask,
            memory_key_padding_mask=memory_pad_mask,
            tgt_is_causal=True,
        )  # [K,L,D]
        return self.output(hidden)  # [K,L,V]

    def _empty_logits(self, L, host_states):
        """``[0,L,V]`` logits connected (with zero weight) to every parameter of the decoder."""
        x = host_states.new_zeros(0, L, self.embed_dim + self.d_model)
        logits = self.output(self.input_proj(x))  # [0,L,V]
        tie = sum(p.sum() for p in self.decoder.parameters()) * 0.0
        return logits + tie

    def greedy_decode(
        self,
        host_states,
        memory,
        memory_pad_mask,
        embed_fn,
        bos_id,
        eos_id,
        max_len=DEFAULT_AEC_MAX_LEN,
        pad_id=0,
        return_logits=False,
    ):
        """Batched greedy decoding of all K corrections (diagnostic correction output).

        Every step re-runs the decoder on the whole prefix of all K sequences at once; the
        loop stops when every sequence has emitted ``eos_id`` or after ``max_len`` tokens.
        Put the module in ``eval()`` mode and wrap the call in ``torch.no_grad()`` yourself.

        Arguments
        ---------
        host_states : torch.Tensor
            ``[K,D]`` host vectors.
        memory : torch.Tensor
            ``[K,T_t,D]`` H_T of each host's utterance.
        memory_pad_mask : torch.Tensor
            ``[K,T_t]`` bool, True = padding.
        embed_fn : callable
            The text encoder's TE + PE, as in :meth:`forward`.
        bos_id, eos_id : int
            Start and end ids (``[CLS]`` and ``[SEP]`` for BERT vocabularies).
        max_len : int
            Most tokens generated per sequence (EOS included).
        pad_id : int
            Id written after a sequence's EOS.
        return_logits : bool
            Also return the logits of every step.

        Returns
        -------
        tokens : torch.Tensor
            ``[K,S]`` long, S ≤ ``max_len``: generated ids, EOS kept, ``pad_id`` after it.
        lengths : torch.Tensor
            ``[K]`` long, tokens before EOS (``max_len`` when no EOS was produced).
        step_logits : torch.Tensor
            ``[K,S,V]`` logits of each step, only when ``return_logits``.
        """
        self._check_inputs(host_states, memory, memory_pad_mask)
        if max_len < 1:
            raise ValueError(f"max_len must be >= 1, got {max_len}")
        K = host_states.shape[0]
        device = host_states.device
        prefix = torch.full((K, 1), bos_id, dtype=torch.long, device=device)  # [K,1+s]
        finished = torch.zeros(K, dtype=torch.bool, device=device)  # [K]
        lengths = torch.full((K,), max_len, dtype=torch.long, device=device)  # [K]
        steps = []
        for step in range(max_len if K else 0):
            logits = self.forward(
                prefix,
                torch.zeros_like(prefix, dtype=torch.bool),
                host_states,
                memory,
                memory_pad_mask,
                embed_fn,
            )[:, -1]  # [K,V] prediction for the next token
            steps.append(logits)
            next_token = logits.argmax(dim=-1)  # [K]
            next_token = next_token.masked_fill(finished, pad_id)
            just_ended = (next_token == eos_id) & ~finished
            lengths = torch.where(just_ended, torch.full_like(lengths, step), lengths)
            finished = finished | just_ended
            prefix = torch.cat([prefix, next_token.unsqueeze(1)], dim=1)
            if bool(finished.all()):
                break
        tokens = prefix[:, 1:]  # [K,S] drop BOS
        if not return_logits:
            return tokens, lengths
        if steps:
            step_logits = torch.stack(steps, dim=1)  # [K,S,V]
        else:
            step_logits = host_states.new_zeros(K, 0, self.vocab_size)
        return tokens, lengths, step_logits
