"""The Table IV switches: what each one implies, and the combinations the model cannot train.

Plain functions over plain values (no torch), so that the same rule serves twice: the
configuration pre-check calls them on the YAML's values before anything is built, and the Brain
calls them at construction on the values it derives from the objects that were built
(``use_gan`` = a discriminator exists, ``use_aed`` = the model has an AED head, ...). Each rule
is written once, here; every message is one line that ends with the override that fixes it.

=========================  ================================================================
:func:`uses_modality`      which encoders a ``modalities`` setting uses
:func:`produces_invariant` whether H_inv exists (what the GAN acts on)
:func:`check_switches`     GAN needs H_inv; AED/AEC need the text side and ASR text
:func:`aec_target_cap`     the AEC target cap, and ``max_tokens`` for whole-utterance AEC
=========================  ================================================================
"""

from __future__ import annotations

#: Values of ``modalities`` (Table IV A(1) speech, A(2) text).
MODALITIES = ("both", "speech", "text")


class SwitchError(ValueError):
    """A switch combination the model cannot train; the message is one line with the fix."""


def uses_modality(modalities, modality):
    """Whether a ``modalities`` setting (``both``, ``speech``, ``text``) uses ``modality``.

    Example
    -------
    >>> uses_modality("both", "text"), uses_modality("speech", "text")
    (True, False)
    """
    return modalities in ("both", modality)


def produces_invariant(modalities, use_mir):
    """Whether the modality-invariant representation H_inv exists (both modalities and MIR).

    Example
    -------
    >>> produces_invariant("both", True), produces_invariant("both", False)
    (True, False)
    >>> produces_invariant("speech", True)
    False
    """
    return modalities == "both" and bool(use_mir)


def check_switches(modalities, use_msr, use_mir, use_aed, use_aec, use_gan, text_source):
    """Refuse the switch combinations the model cannot train (:class:`SwitchError`, one line).

    ``use_msr`` takes no part in a rule today (H_inv exists with or without it); it is an argument
    so that every caller hands over all the structural switches. ``text_source`` is what the text
    encoder reads (``hypothesis``: ASR output; ``transcript``: the human reference, Table VI):
    AED and AEC learn the ASR's errors from the hypothesis aligned with the reference, and a
    reference aligned with itself has none (every token KEEP, nothing to correct), so
    ``transcript`` runs without both, as Table VI does.

    Example
    -------
    >>> check_switches("both", True, True, True, True, True, "hypothesis")
    >>> check_switches("both", True, True, False, False, True, "transcript")
    >>> check_switches("speech", True, True, False, False, True, "hypothesis")
    Traceback (most recent call last):
    ...
    m4ser_lobes.switches.SwitchError: use_gan=True needs the modality-invariant representation H_inv, which exists only with modalities=both and use_mir=True (got modalities=speech, use_mir=True): add --use_gan=False
    >>> check_switches("speech", True, True, True, False, False, "hypothesis")
    Traceback (most recent call last):
    ...
    m4ser_lobes.switches.SwitchError: modalities=speech with use_aed=True: AED and AEC train the text encoder, which a speech-only model never uses (and would have to load): add --use_aed=False
    >>> check_switches("both", True, True, True, True, True, "transcript")
    Traceback (most recent call last):
    ...
    m4ser_lobes.switches.SwitchError: text_source=transcript with use_aed=True and use_aec=True: AED and AEC learn to find and correct ASR errors, and a human transcript aligned with itself has none (every token KEEP, nothing to correct); Table VI trains on transcripts without both: add --use_aed=False --use_aec=False
    """
    if use_gan and not produces_invariant(modalities, use_mir):
        raise SwitchError(
            "use_gan=True needs the modality-invariant representation H_inv, which exists only "
            f"with modalities=both and use_mir=True (got modalities={modalities}, "
            f"use_mir={use_mir}): add --use_gan=False"
        )
    on = [k for k, v in (("use_aed", use_aed), ("use_aec", use_aec)) if v]
    if not uses_modality(modalities, "text") and on:
        raise SwitchError(
            f"modalities={modalities} with {' and '.join(k + '=True' for k in on)}: AED and AEC "
            "train the text encoder, which a speech-only model never uses (and would have to "
            "load): add " + " ".join(f"--{k}=False" for k in on)
        )
    if text_source == "transcript" and on:
        raise SwitchError(
            f"text_source=transcript with {' and '.join(k + '=True' for k in on)}: AED and AEC "
            "learn to find and correct ASR errors, and a human transcript aligned with itself "
            "has none (every token KEEP, nothing to correct); Table VI trains on transcripts "
            "without both: add " + " ".join(f"--{k}=False" for k in on)
        )


def aec_target_cap(use_aed, use_aec, aec_max_len, max_tokens):
    """The cap on AEC target tokens: ``aec_max_len`` (selective) or ``max_tokens`` (w/o AED).

    Selective correction (``use_aed``) decodes short spans, capped at ``aec_max_len``; the
    "w/o AED" ablation (``use_aec`` without ``use_aed``, Table IV C(1)) decodes the whole
    reference, capped at the text length limit ``max_tokens``, which must then be set.

    Example
    -------
    >>> aec_target_cap(True, True, 16, None), aec_target_cap(False, True, 16, 128)
    (16, 128)
    >>> aec_target_cap(False, True, 16, None)
    Traceback (most recent call last):
    ...
    m4ser_lobes.switches.SwitchError: use_aec=True with use_aed=False corrects whole utterances, capped at the text length limit: set max_tokens in the hparams YAML (e.g. --max_tokens=128)
    """
    if use_aec and not use_aed:
        if max_tokens is None:
            raise SwitchError(
                "use_aec=True with use_aed=False corrects whole utterances, capped at the "
                "text length limit: set max_tokens in the hparams YAML (e.g. --max_tokens=128)"
            )
        return int(max_tokens)
    return int(aec_max_len)
