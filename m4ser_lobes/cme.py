"""Cross-modal encoder (CME) block, paper Fig. 3 and Eqs. 8–10.

A BERT-style post-LN transformer layer whose attention is *cross*-attention: queries from one
sequence, keys and values from another (docs/design.md §2)::

    x = LN(q + Drop(MHA(q, kv, kv, key_padding_mask)))
    y = LN(x + Drop(FFN_{D -> 4D -> D}(x)))

The "FC" of Eqs. 8–10 is the FFN. Padded *query* rows produce values that every consumer must mask
out (pooling, discriminator, contrastive loss); padded *keys* are masked inside.

Shape legend: B batch, T_q query length, T_k key length, D width. Masks: True = padding.
"""

from torch import nn


class CrossModalEncoderLayer(nn.Module):
    """One post-LN cross-attention transformer layer.

    Arguments
    ---------
    d_model : int
        Width D.
    nhead : int
        Attention heads (12 in the paper, Table I).
    dim_feedforward : int, optional
        FFN width, 4·D by default (BERT).
    dropout : float
        Dropout inside attention and FFN (0.1, BERT default).

    Example
    -------
    >>> import torch
    >>> layer = CrossModalEncoderLayer(d_model=16, nhead=4).eval()
    >>> q, kv = torch.randn(2, 5, 16), torch.randn(2, 7, 16)
    >>> kv_pad = torch.tensor([[False] * 7, [False] * 3 + [True] * 4])
    >>> layer(q, kv, kv_pad).shape
    torch.Size([2, 5, 16])
    """

    def __init__(self, d_model, nhead=12, dim_feedforward=None, dropout=0.1):
        super().__init__()
        if d_model % nhead:
            raise ValueError(f"d_model={d_model} is not divisible by nhead={nhead}")
        dim_feedforward = dim_feedforward or 4 * d_model
        self.attention = nn.MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=True)
        self.attention_norm = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(
            nn.Linear(d_model, dim_feedforward),
            nn.GELU(),
            nn.Linear(dim_feedforward, d_model),
        )
        self.ffn_norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, query, key_value, kv_pad_mask):
        """Cross-attend ``query`` [B,T_q,D] to ``key_value`` [B,T_k,D] with ``kv_pad_mask`` [B,T_k]."""
        if kv_pad_mask.shape != key_value.shape[:2]:
            raise ValueError(
                f"kv_pad_mask {tuple(kv_pad_mask.shape)} does not match key_value "
                f"{tuple(key_value.shape[:2])}"
            )
        attended, _ = self.attention(
            query, key_value, key_value, key_padding_mask=kv_pad_mask, need_weights=False
        )
        x = self.attention_norm(query + self.dropout(attended))
        return self.ffn_norm(x + self.dropout(self.ffn(x)))


class CrossModalEncoder(nn.Module):
    """A CME block: ``num_layers`` cross-attention layers, the query refined layer by layer.

    Eq. 8: Ĥ_S^spe = CME(q=H_T, kv=H_S); Eq. 9: H_S^spe = CME(q=H_S, kv=Ĥ_S^spe);
    Eq. 10: H_T^spe = CME(q=H_S, kv=H_T). Three separate blocks, no weight sharing.

    Arguments
    ---------
    d_model, nhead : int
        Width D and attention heads of every layer (:class:`CrossModalEncoderLayer`).
    num_layers : int
        Layers per block (1 in the paper's text; 2 reproduces Table V's +54.5 M budget).
    dim_feedforward, dropout
        As in :class:`CrossModalEncoderLayer` (FFN width 4·D by default, dropout 0.1).

    Example
    -------
    >>> import torch
    >>> cme = CrossModalEncoder(d_model=16, nhead=4, num_layers=2)
    >>> cme(torch.randn(2, 5, 16), torch.randn(2, 7, 16), torch.zeros(2, 7, dtype=torch.bool)).shape
    torch.Size([2, 5, 16])
    """

    def __init__(self, d_model, nhead=12, num_layers=1, dim_feedforward=None, dropout=0.1):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.layers = nn.ModuleList(
            CrossModalEncoderLayer(d_model, nhead, dim_feedforward, dropout)
            for _ in range(num_layers)
        )

    def forward(self, query, key_value, kv_pad_mask):
        """[B,T_q,D] queries, [B,T_k,D] keys/values, [B,T_k] key pad mask -> [B,T_q,D]."""
        for layer in self.layers:
            query = layer(query, key_value, kv_pad_mask)
        return query
