"""The export folder as :class:`~m4ser_lobes.inference.classifier.M4SERClassifier` reads it.

``model.ckpt`` holds every inference weight except the pretrained backbones
(:data:`BACKBONE_PREFIXES`), which live in ``speech_encoder/`` and ``text_encoder/``
(``save_pretrained``); ``corrector.ckpt`` (:data:`CORRECTOR_FILE`) holds AED + AEC, fetched only
when a correction is asked for. :func:`load_inference_weights` is the Pretrainer hook that the
export's ``hyperparams.yaml`` names; :func:`resolve_source` turns a folder or Hub repo id into a
local copy of the whole folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from speechbrain.utils.fetching import FetchConfig

#: Parameters of these sub-modules are stored by ``save_pretrained`` in their own folders
#: (``speech_encoder/``, ``text_encoder/``), not in ``model.ckpt``.
BACKBONE_PREFIXES = ("speech_encoder.model.", "text_encoder.model.")
CORRECTOR_FILE = "corrector.ckpt"


def load_inference_weights(model, path):
    """Pretrainer hook: load ``model.ckpt`` into the inference :class:`~m4ser_lobes.model.M4SER`.

    Stricter than SpeechBrain's default non-strict transfer: every parameter must be found,
    except the pretrained backbones' (:data:`BACKBONE_PREFIXES`), which the encoders already
    loaded from their ``save_pretrained`` folders; an unexpected key is an error too.

    Arguments
    ---------
    model : torch.nn.Module
        The model built by ``hyperparams.yaml``.
    path : str or Path
        ``model.ckpt`` (a state dict).
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(BACKBONE_PREFIXES)]
    if missing or result.unexpected_keys:
        raise RuntimeError(
            f"{path} does not match the model that hyperparams.yaml builds: missing "
            f"{missing[:5]}{' ...' if len(missing) > 5 else ''}, unexpected "
            f"{result.unexpected_keys[:5]}{' ...' if len(result.unexpected_keys) > 5 else ''}. "
            "Export the checkpoint again with `python -m m4ser_lobes.inference.export`."
        )


def resolve_source(source, fetch_config=None):
    """A local folder holding the whole export: ``source`` itself, or a Hub snapshot of it.

    The encoders are loaded with ``from_pretrained`` from sub-folders of the export, which
    SpeechBrain's file-by-file ``fetch`` cannot provide, so a Hub repo id is downloaded (or
    found in the cache, offline with ``HF_HUB_OFFLINE=1``) with
    ``huggingface_hub.snapshot_download``; ``corrector.ckpt`` is left out until a correction is
    asked for.

    Arguments
    ---------
    source : str or Path
        Local folder, or Hub repo id (``org/name``).
    fetch_config : speechbrain.utils.fetching.FetchConfig, optional
        ``revision``, ``token``, ``huggingface_cache_dir`` and ``allow_network`` are honoured.

    Returns
    -------
    Path

    Example
    -------
    >>> resolve_source(getfixture("tmp_path")) == getfixture("tmp_path").resolve()
    True
    >>> resolve_source("exports/typo/m4ser")
    Traceback (most recent call last):
    ...
    FileNotFoundError: exports/typo/m4ser: no such export folder (a Hugging Face repo id looks like org/name)
    """
    if Path(source).is_dir():
        return Path(source).resolve()
    text = os.fspath(source)
    if text.startswith((".", "/", "~")) or text.count("/") != 1 or os.sep in text.replace("/", ""):
        raise FileNotFoundError(
            f"{text}: no such export folder (a Hugging Face repo id looks like org/name)"
        )
    from huggingface_hub import snapshot_download

    config = fetch_config or FetchConfig()
    return Path(
        snapshot_download(
            repo_id=str(source),
            revision=config.revision,
            cache_dir=config.huggingface_cache_dir,
            token=config.token,
            local_files_only=not config.allow_network,
            ignore_patterns=[CORRECTOR_FILE],
        )
    )
