"""Training objectives of M4SER (Eqs. 3, 7, 19, 20, 21, 22 and Alg. 1 line 25).

Losses live here, outside every ``forward``: lobes return logits and features, the Brain
combines them. Every loss is computed in float32 (safe under fp16/bf16 autocast) and is a
*mean*, not the sum the paper writes (token-mean for Eqs. 3 and 7, frame-mean for Eq. 20,
anchor-mean for Eq. 21; docs/design.md §3.3), so the weights α β γ λ do not depend on batch size or
sequence length.

Shape legend: B batch, T_s speech frames, T_t text tokens, D width, C classes, V vocabulary,
K CHANGE tokens of the batch, L decoder length. Masks: ``*_pad_mask`` is True = padding.
Label padding is :data:`~m4ser_lobes.text.tags.IGNORE_INDEX` (-100); masked means come from
:mod:`m4ser_lobes.masks`.

Paper symbol → code name

======================  =========================================================
L_ER (Eq. 19)           :func:`emotion_loss`
L_AED (Eq. 3)           :func:`aed_loss`
L_AEC (Eq. 7)           :func:`aec_loss`
L_D, L_G (Eq. 20)       :func:`gan_losses` (:func:`discriminator_loss`, :func:`generator_loss`)
L_LCL, τ (Eq. 21)       :func:`label_contrastive_loss`, ``temperature``
α β γ λ (Eq. 22)        :data:`LOSS_TERMS` (one row per term), :func:`joint_loss`
======================  =========================================================
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from m4ser_lobes.masks import check_pad_mask, mean_or_zero
from m4ser_lobes.text.tags import IGNORE_INDEX, NUM_AED_TAGS


# --------------------------------------------------------------------------------------------
# Cross-entropy family: L_ER (Eq. 19), L_AED (Eq. 3), L_AEC (Eq. 7)
# --------------------------------------------------------------------------------------------
def _token_cross_entropy(logits, labels, class_weights=None):
    """Mean cross-entropy over the labels that are not ``IGNORE_INDEX``; 0 when there are none.

    ``logits [N,C]``, ``labels [N]``. With ``class_weights`` the mean is weighted
    (Σ w_y ℓ / Σ w_y, as ``F.cross_entropy`` does). With no valid label the result is an exact
    0 that is still connected to ``logits`` (backward works and gives zero gradients).
    """
    logits = logits.float()
    weight = None if class_weights is None else class_weights.to(logits.device, torch.float32)
    total = F.cross_entropy(
        logits, labels, weight=weight, ignore_index=IGNORE_INDEX, reduction="sum"
    )  # []
    valid = labels != IGNORE_INDEX  # [N]
    if weight is None:
        denom = valid.sum().to(total.dtype)
    else:
        denom = weight[labels[valid]].sum()
    # denom == 0 only when no label is valid, and then ``total`` is exactly 0.
    return total / torch.where(denom > 0, denom, torch.ones_like(denom))


def emotion_loss(logits, labels, class_weights=None):
    """Emotion-recognition cross-entropy L_ER (Eq. 19), mean over the batch.

    Arguments
    ---------
    logits : torch.Tensor
        ``[B,C]`` unnormalised class scores of the ER head.
    labels : torch.Tensor
        ``[B]`` long class indices (``IGNORE_INDEX`` skips a sample).
    class_weights : torch.Tensor, optional
        ``[C]`` per-class weights (weighted mean); None for the paper's plain CE.

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Example
    -------
    >>> logits = torch.zeros(4, 3)
    >>> round(emotion_loss(logits, torch.tensor([0, 1, 2, 0])).item(), 4)  # ln 3
    1.0986
    """
    if logits.dim() != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(
            f"emotion_loss expects logits [B,C] and labels [B]; got logits "
            f"{tuple(logits.shape)} and labels {tuple(labels.shape)}"
        )
    return _token_cross_entropy(logits, labels, class_weights)


def aed_loss(logits, labels, class_weights=None):
    """Error-detection loss L_AED (Eq. 3): token-mean CE over KEEP/DELETE/CHANGE tags.

    Eq. 3 is a sum over tokens; this is the mean over the valid hypothesis tokens of the
    whole batch (docs/design.md §3.3). [SEP] and padding carry ``IGNORE_INDEX`` and are skipped.

    Arguments
    ---------
    logits : torch.Tensor
        ``[B,T_t,3]`` output of the AED head (tags K=0, D=1, C=2).
    labels : torch.Tensor
        ``[B,T_t]`` long tags, ``IGNORE_INDEX`` (-100) where no tag applies.
    class_weights : torch.Tensor, optional
        ``[3]`` tag weights (e.g. ConstDecoder's CHANGE weight 1.5); None = unweighted.

    Returns
    -------
    torch.Tensor
        Scalar loss; exactly 0 (and differentiable) when no tag is valid.

    Example
    -------
    >>> logits = torch.zeros(2, 4, 3)
    >>> labels = torch.tensor([[0, 1, 2, -100], [0, -100, -100, -100]])
    >>> round(aed_loss(logits, labels).item(), 4)  # ln 3, the padding is ignored
    1.0986
    """
    if logits.dim() != 3 or logits.shape[-1] != NUM_AED_TAGS or labels.shape != logits.shape[:2]:
        raise ValueError(
            f"aed_loss expects logits [B,T_t,{NUM_AED_TAGS}] and labels [B,T_t]; got logits "
            f"{tuple(logits.shape)} and labels {tuple(labels.shape)}"
        )
    return _token_cross_entropy(
        logits.reshape(-1, NUM_AED_TAGS), labels.reshape(-1), class_weights
    )


def aec_loss(logits, labels):
    """Error-correction loss L_AEC (Eq. 7): token-mean CE over the K decoded targets.

    Eq. 7 is a sum; this is the mean over the non-padding target tokens (``z_1 … z_c [EOS]``)
    of all K sequences of the batch (docs/design.md §3.3).

    Arguments
    ---------
    logits : torch.Tensor
        ``[K,L,V]`` output of :class:`~m4ser_lobes.aec.SelectiveAECDecoder`.
    labels : torch.Tensor
        ``[K,L]`` long target ids, ``IGNORE_INDEX`` (-100) on padding.

    Returns
    -------
    torch.Tensor
        Scalar loss. When K == 0 or no label is valid it is exactly 0, finite and connected to
        ``logits``, so ``backward()`` runs (and gives zero gradients).

    Example
    -------
    >>> empty = torch.zeros(0, 5, 50, requires_grad=True)
    >>> loss = aec_loss(empty, torch.zeros(0, 5, dtype=torch.long))
    >>> loss.item(), loss.requires_grad
    (0.0, True)
    """
    if logits.dim() != 3 or labels.shape != logits.shape[:2]:
        raise ValueError(
            f"aec_loss expects logits [K,L,V] and labels [K,L]; got logits "
            f"{tuple(logits.shape)} and labels {tuple(labels.shape)}"
        )
    return _token_cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))


# --------------------------------------------------------------------------------------------
# Adversarial losses (Eq. 20, docs/design.md §5)
# --------------------------------------------------------------------------------------------
class GANLosses(NamedTuple):
    """The two adversarial quantities of docs/design.md §5 (unpacks as ``L_D, L_G``)."""

    d_loss: torch.Tensor  # L_D ≤ 0: E[log D(H_S^spe)] + E[log(1 − D(H_T^spe))]
    g_loss: torch.Tensor  # L_G ≥ 2 ln 2: E[−log D(H_inv) − log(1 − D(H_inv))]


def _valid_frames(logits, pad_mask, name):
    """Float32 logits of the valid frames of the whole batch, ``[N]`` with N = Σ valid.

    Padded frames are dropped *before* any arithmetic, so garbage (even NaN) there affects
    neither the value nor the gradient.
    """
    if logits.dim() == 3 and logits.shape[-1] == 1:
        logits = logits.squeeze(-1)  # [B,T_s,1] -> [B,T_s]
    if logits.shape != pad_mask.shape:
        raise ValueError(
            f"{name} must be [B,T_s] or [B,T_s,1] matching the speech pad mask "
            f"{tuple(pad_mask.shape)}; got {tuple(logits.shape)}"
        )
    return logits[~pad_mask].float()  # [N]


def discriminator_loss(speech_logits, text_logits, pad_mask):
    """L_D = E[log D(H_S^spe)] + E[log(1 − D(H_T^spe))] (Eq. 20, first line; ≤ 0).

    D labels speech-specific frames 1 and text-specific frames 0. Computed from logits with
    ``log D = logsigmoid(z)``, ``log(1 − D) = logsigmoid(−z)``.

    Arguments
    ---------
    speech_logits : torch.Tensor
        ``[B,T_s]`` (or ``[B,T_s,1]``) discriminator logits of H_S^spe.
    text_logits : torch.Tensor
        ``[B,T_s]`` (or ``[B,T_s,1]``) discriminator logits of H_T^spe.
    pad_mask : torch.Tensor
        ``[B,T_s]`` speech pad mask, True = padding.

    Returns
    -------
    torch.Tensor
        Scalar L_D (the discriminator *maximises* it).
    """
    check_pad_mask(pad_mask)
    z_s = _valid_frames(speech_logits, pad_mask, "speech_logits")  # [N]
    z_t = _valid_frames(text_logits, pad_mask, "text_logits")  # [N]
    return mean_or_zero(F.logsigmoid(z_s)) + mean_or_zero(F.logsigmoid(-z_t))


def generator_loss(invariant_logits, pad_mask):
    """L_G = E[−log D(H_inv) − log(1 − D(H_inv))] (Eq. 20, second line; ≥ 2 ln 2 ≈ 1.386).

    Minimal (2 ln 2) when D(H_inv) = 0.5, i.e. when D cannot tell whether the invariant frames
    come from speech or text. This is the term of the model update (Alg. 1 line 25).

    Arguments
    ---------
    invariant_logits : torch.Tensor
        ``[B,T_s]`` (or ``[B,T_s,1]``) discriminator logits of H_inv.
    pad_mask : torch.Tensor
        ``[B,T_s]`` speech pad mask, True = padding.

    Returns
    -------
    torch.Tensor
        Scalar L_G.

    Example
    -------
    >>> round(generator_loss(torch.zeros(2, 5), torch.zeros(2, 5, dtype=torch.bool)).item(), 4)
    1.3863
    """
    check_pad_mask(pad_mask)
    z_i = _valid_frames(invariant_logits, pad_mask, "invariant_logits")  # [N]
    return mean_or_zero(-F.logsigmoid(z_i) - F.logsigmoid(-z_i))


def gan_losses(speech_logits, text_logits, invariant_logits, pad_mask):
    """Both adversarial losses of Eq. 20 as read in docs/design.md §5: ``(L_D, L_G)``.

    E[·] is the mean over the valid speech frames of the whole batch (Σ_b Σ_t ℓ / Σ valid, as
    :func:`m4ser_lobes.masks.mean_over_valid_positions` computes it), a per-frame value, so
    L_G → 2 ln 2 at equilibrium (Fig. 8). Rows that are all padding add no frame and are thus
    excluded. The discriminator step (Alg. 1 line 22) minimises
    ``−(L_D + L_G)`` on detached inputs; the model step (line 25) adds ``γ · L_G``.

    Arguments
    ---------
    speech_logits : torch.Tensor
        ``[B,T_s]`` or ``[B,T_s,1]``: D's logits for H_S^spe.
    text_logits : torch.Tensor
        ``[B,T_s]`` or ``[B,T_s,1]``: D's logits for H_T^spe.
    invariant_logits : torch.Tensor
        ``[B,T_s]`` or ``[B,T_s,1]``: D's logits for H_inv.
    pad_mask : torch.Tensor
        ``[B,T_s]`` speech pad mask, True = padding.

    Returns
    -------
    GANLosses
        ``(d_loss, g_loss)`` = (L_D, L_G), float32 scalars.

    Example
    -------
    >>> B, T = 2, 5
    >>> pad_mask = torch.tensor([[False] * 5, [False, False, True, True, True]])
    >>> L_D, L_G = gan_losses(torch.zeros(B, T), torch.zeros(B, T), torch.zeros(B, T, 1), pad_mask)
    >>> round(L_D.item(), 4), round(L_G.item(), 4)  # 2 ln 0.5, 2 ln 2
    (-1.3863, 1.3863)
    """
    check_pad_mask(pad_mask)
    return GANLosses(
        discriminator_loss(speech_logits, text_logits, pad_mask),
        generator_loss(invariant_logits, pad_mask),
    )


# --------------------------------------------------------------------------------------------
# Label-based contrastive loss (Eq. 21, docs/design.md §6)
# --------------------------------------------------------------------------------------------
def label_contrastive_loss(features, labels, temperature=0.07):
    """Label-based contrastive loss L_LCL (Eq. 21): single-view supervised contrastive loss.

    With z_i = normalize(features_i), s_ij = z_i·z_j / τ, P(i) = {p ≠ i : y_p = y_i} and
    A(i) = {a ≠ i} (Khosla et al.; the paper's "all samples" would put the self-pair in the
    denominator, docs/design.md §3.3)::

        ℓ_i = −(1/|P(i)|) Σ_{p∈P(i)} log( exp(s_ip) / Σ_{a∈A(i)} exp(s_ia) )

    The loss is the *mean* of ℓ_i over the anchors with at least one positive (Eq. 21 writes a
    sum). Anchors without positives are skipped; a batch without any positive pair (including
    a batch of one) gives an exact 0 that keeps the graph. Stable: the row maximum over A(i) is
    subtracted before exponentiation. No projection head (Table V's +0.2 M is D alone).

    Arguments
    ---------
    features : torch.Tensor
        ``[B,D]`` pooled features H_ap (before dropout), not yet normalised.
    labels : torch.Tensor
        ``[B]`` integer emotion labels.
    temperature : float
        τ of Eq. 21 (0.07 in Table I).

    Returns
    -------
    torch.Tensor
        Scalar float32 loss.

    Example
    -------
    >>> features = torch.tensor([[1.0, 0.0], [2.0, 0.1], [0.0, 1.0], [0.1, 3.0]])
    >>> loss = label_contrastive_loss(features, torch.tensor([0, 0, 1, 1]))
    >>> loss.item() < 0.01  # same-class pairs aligned, classes orthogonal
    True
    >>> label_contrastive_loss(features, torch.tensor([0, 1, 2, 3])).item()  # no positive pair
    0.0
    """
    if features.dim() != 2 or labels.dim() != 1 or labels.shape[0] != features.shape[0]:
        raise ValueError(
            f"label_contrastive_loss expects features [B,D] and labels [B]; got features "
            f"{tuple(features.shape)} and labels {tuple(labels.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    B = features.shape[0]
    eye = torch.eye(B, dtype=torch.bool, device=features.device)  # [B,B]
    positives = (labels.unsqueeze(0) == labels.unsqueeze(1)) & ~eye  # [B,B] P(i)
    num_pos = positives.sum(dim=1)  # [B] |P(i)|
    has_pos = num_pos > 0  # [B]
    if not bool(has_pos.any()):  # also B <= 1: exact 0, graph kept
        return features.float().sum() * 0.0

    z = F.normalize(features.float(), dim=-1)  # [B,D]
    sim = (z @ z.t()) / temperature  # [B,B] s_ij
    sim = sim.masked_fill(eye, float("-inf"))  # a ≠ i
    sim = sim - sim.max(dim=1, keepdim=True).values.detach()  # row-max subtraction (stability)
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)  # [B,B] log(exp(s_ip)/Σ_A)
    pos_log_prob = log_prob.masked_fill(~positives, 0.0).sum(dim=1)  # [B] (self never read)
    per_anchor = -pos_log_prob / num_pos.clamp(min=1)  # [B] ℓ_i
    return per_anchor[has_pos].mean()


def anchors_without_positive(labels):
    """Number of anchors of :func:`label_contrastive_loss` with no positive (P(i) empty), as a
    0-dim long tensor on the labels' device (no host sync).

    Those anchors are skipped by L_LCL: a class seen once in a batch gets no contrastive signal
    (frequent on imbalanced corpora such as MELD; the recipe logs their share as
    ``LCL_no_positive``).

    Example
    -------
    >>> anchors_without_positive(torch.tensor([0, 0, 1, 2])).item()
    2
    """
    if labels.dim() != 1:
        raise ValueError(f"anchors_without_positive expects labels [B]; got {tuple(labels.shape)}")
    same = labels.unsqueeze(0) == labels.unsqueeze(1)  # [B,B], diagonal included
    return (same.sum(dim=1) == 1).sum()


# --------------------------------------------------------------------------------------------
# The loss terms, declared once (Eq. 22 / Alg. 1 line 25)
# --------------------------------------------------------------------------------------------
class LossTerm(NamedTuple):
    """One row of :data:`LOSS_TERMS`: a term of the model objective, or a term only logged.

    Arguments
    ---------
    name : str
        Key of the term in the Brain's ``terms`` and in :func:`joint_loss`; the Brain computes it
        with its method ``loss_<name>`` (:class:`m4ser_lobes.brain.M4SERBrain`).
    paper : str
        The paper's symbol: the name it is logged under (``history.json``) and its Fig. 8 panel.
    weight : tuple of str, optional
        The hparams whose product weighs the term in the objective (``()``: weight 1); None: the
        term is logged only, never minimised by the model update.
    switch : str, optional
        The hparams switch that turns the term on (None: always on).
    computed_by : str, optional
        For a logged-only term: the term whose ``loss_<name>`` method computes it too (L_D comes
        with L_G from one discriminator call).
    reference : tuple, optional
        ``(label, value)``: the reference line of its Fig. 8 panel (L_G's equilibrium 2 ln 2).
    every_stage : bool
        Also computed in validation and test (the stage loss); otherwise training only.
    """

    name: str
    paper: str
    weight: tuple | None
    switch: str | None
    computed_by: str | None = None
    reference: tuple | None = None
    every_stage: bool = False

    @property
    def in_objective(self):
        """Whether the model update minimises this term (it has a weight)."""
        return self.weight is not None


#: Every loss term, in the order of the objective's sum and of the Fig. 8 panels. The Brain's
#: objective and logging, the report's Fig. 8 panels and the configuration check (which weights
#: a switch brings in) all read this table. A new term is one row here plus the method that
#: computes it, ``M4SERBrain.loss_<name>`` (using a loss function of this module).
LOSS_TERMS = (
    LossTerm("er", "L_ER", weight=(), switch=None, every_stage=True),  # Eq. 19
    LossTerm("aed", "L_AED", weight=("alpha", "beta"), switch="use_aed"),  # Eq. 3
    LossTerm("aec", "L_AEC", weight=("alpha",), switch="use_aec"),  # Eq. 7
    LossTerm("g", "L_G", weight=("gamma",), switch="use_gan",  # Eq. 20, Alg. 1 line 25
             reference=("2 ln 2", 2 * math.log(2))),
    LossTerm("d", "L_D", weight=None, switch="use_gan", computed_by="g"),  # D's side (≤ 0)
    LossTerm("gan", "L_GAN", weight=None, switch="use_gan", computed_by="g"),  # L_D + L_G
    LossTerm("lcl", "L_LCL", weight=("lam",), switch="use_lcl"),  # Eq. 21
)
TERMS_BY_NAME = {term.name: term for term in LOSS_TERMS}


def loss_switches():
    """The switches that turn loss terms on, in :data:`LOSS_TERMS` order.

    Example
    -------
    >>> loss_switches()
    ('use_aed', 'use_aec', 'use_gan', 'use_lcl')
    """
    return tuple(dict.fromkeys(t.switch for t in LOSS_TERMS if t.switch))


def objective_weights(terms):
    """The hparams that weigh ``terms`` (rows of :data:`LOSS_TERMS`) in the objective.

    Example
    -------
    >>> objective_weights(LOSS_TERMS)
    ('alpha', 'beta', 'gamma', 'lam')
    >>> objective_weights([TERMS_BY_NAME["er"], TERMS_BY_NAME["aec"], TERMS_BY_NAME["d"]])
    ('alpha',)
    """
    return tuple(dict.fromkeys(k for t in terms if t.in_objective for k in t.weight))


def active_terms(values):
    """The rows of :data:`LOSS_TERMS` that a configuration turns on, in table order.

    Arguments
    ---------
    values : mapping
        Switch name -> value for every switch of :func:`loss_switches` (plain YAML values or the
        ones the Brain derives from the built objects).

    Returns
    -------
    list of LossTerm

    Example
    -------
    >>> on = active_terms({"use_aed": True, "use_aec": False, "use_gan": False, "use_lcl": True})
    >>> [t.paper for t in on]
    ['L_ER', 'L_AED', 'L_LCL']
    >>> objective_weights(on)  # the weights that matter
    ('alpha', 'beta', 'lam')
    """
    missing = [s for s in loss_switches() if s not in values]
    if missing:
        raise KeyError(f"the loss switches {missing} have no value; set them in the hparams "
                       f"YAML (e.g. --{missing[0]}=False)")
    return [t for t in LOSS_TERMS if t.switch is None or values[t.switch]]


def term_weight(term, weights):
    """The weight of ``term`` in the objective: the product of its :attr:`LossTerm.weight` hparams.

    Example
    -------
    >>> round(term_weight(TERMS_BY_NAME["aed"], {"alpha": 0.1, "beta": 3.0}), 4)  # α · β
    0.3
    >>> term_weight(TERMS_BY_NAME["er"], {})
    1.0
    """
    if not term.in_objective:
        raise KeyError(f"{term.paper} is logged only: it has no weight in the objective")
    product = 1.0
    for key in term.weight:
        if key not in weights:
            raise KeyError(f"the weight {key} of {term.paper} (Eq. 22) has no value; set it in "
                           f"the hparams YAML (--{key}=<number>)")
        product = product * weights[key]
    return product


def joint_loss(terms, weights):
    """Objective of the model update, Alg. 1 line 25 (Eq. 22 with L_G in place of L_GAN).

    ``L = L_ER + α (β L_AED + L_AEC) + γ L_G + λ L_LCL``: the sum, in :data:`LOSS_TERMS` order,
    of each term times :func:`term_weight`. Each term is the *mean* form defined in this module
    (token-, frame- and anchor-means instead of the paper's sums, docs/design.md §3.3). A missing
    (or None) term counts as 0, so ablations drop a term by not computing it.

    Arguments
    ---------
    terms : dict
        Scalars keyed by the names of the objective's terms (any subset). Other keys, the
        logged-only L_D and L_GAN included (docs/design.md §5), raise ``KeyError``.
    weights : mapping
        The hparams the present terms' weights read: α β γ λ (Table I: 0.1, 3, 0.01, 0.1).

    Returns
    -------
    torch.Tensor
        Scalar total loss (a zero tensor when ``terms`` holds no tensor).

    Example
    -------
    >>> weights = {"alpha": 0.1, "beta": 3.0, "gamma": 0.01, "lam": 0.1}
    >>> terms = {name: torch.tensor(1.0) for name in ("er", "aed", "aec", "g", "lcl")}
    >>> round(joint_loss(terms, weights).item(), 4)  # 1 + 0.1 * (3 + 1) + 0.01 + 0.1
    1.51
    >>> joint_loss({"er": torch.tensor(2.0)}, {})
    tensor(2.)
    """
    objective = [t for t in LOSS_TERMS if t.in_objective]
    unknown = set(terms) - {t.name for t in objective}
    if unknown:
        raise KeyError(f"unknown loss terms {sorted(unknown)}; expected a subset of "
                       f"{[t.name for t in objective]}")
    total = None
    for term in objective:
        value = terms.get(term.name)
        if value is None:
            continue
        contribution = term_weight(term, weights) * value
        total = contribution if total is None else total + contribution
    return torch.zeros(()) if total is None else total
