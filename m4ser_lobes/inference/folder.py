"""The export folder as :class:`~m4ser_lobes.inference.classifier.M4SERClassifier` reads it.

``model.ckpt`` holds every inference weight except the pretrained backbones
(:data:`BACKBONE_PREFIXES`), which live in ``speech_encoder/`` and ``text_encoder/``
(``save_pretrained``); ``corrector.ckpt`` (:data:`CORRECTOR_FILE`) holds AED + AEC, fetched only
when a correction is asked for. :func:`load_inference_weights` is the Pretrainer hook that the
export's ``hyperparams.yaml`` names; :func:`resolve_source` turns a folder or Hub repo id into a
local copy of the whole folder.

Writing one (``m4ser-export``): the folder is written under a hidden name beside its destination
(:func:`staging_folder`, ``.NAME.tmp-HOST-PID-XXXXXXXX``) and :func:`publish` moves it into
place: the destination is at every moment the old export or the new one, never missing, where
Linux can swap two folders in one step (``renameat2(RENAME_EXCHANGE)``); elsewhere the old one is
renamed aside (``.NAME.old-HOST-PID-XXXXXXXX``), the new one in, and the old one deleted. What a
killed export leaves behind (a staging folder, an old export renamed aside) is removed by the
next export of the same destination (:func:`clean_leftovers`), which first puts an old export
back when the destination is missing; a folder of a process still running is never touched.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import re
import secrets
import shutil
import socket
import tempfile
from pathlib import Path

import torch
from speechbrain.utils.fetching import FetchConfig

#: Parameters of these sub-modules are stored by ``save_pretrained`` in their own folders
#: (``speech_encoder/``, ``text_encoder/``), not in ``model.ckpt``.
BACKBONE_PREFIXES = ("speech_encoder.model.", "text_encoder.model.")
CORRECTOR_FILE = "corrector.ckpt"

logger = logging.getLogger(__name__)


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


def check_export_files(folder, hparams_file="hyperparams.yaml"):
    """Refuse an export folder without the files every export has (one line naming them).

    Example
    -------
    >>> check_export_files(getfixture("tmp_path"))
    Traceback (most recent call last):
    ...
    FileNotFoundError: ...: not a complete export: hyperparams.yaml, model.ckpt, label_encoder.txt missing; export the model again with m4ser-export
    """
    missing = [
        name
        for name in (hparams_file, "model.ckpt", "label_encoder.txt")
        if not (Path(folder) / name).is_file()
    ]
    if missing:
        raise FileNotFoundError(
            f"{folder}: not a complete export: {', '.join(missing)} missing; export the model "
            "again with m4ser-export"
        )


def corrector_file(path, source=None, fetch_config=None):
    """``corrector.ckpt``: ``path`` when it exists, else downloaded from the Hub repo ``source``.

    Returns
    -------
    Path
    """
    path = Path(path)
    if not path.exists() and source and not Path(source).is_dir():
        from huggingface_hub import hf_hub_download

        config = fetch_config or FetchConfig()
        path = Path(
            hf_hub_download(
                repo_id=str(source),
                filename=CORRECTOR_FILE,
                revision=config.revision,
                cache_dir=config.huggingface_cache_dir,
                token=config.token,
                local_files_only=not config.allow_network,
            )
        )
    return path


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


# --------------------------------------------------------------------------------------------
# Publishing an export
# --------------------------------------------------------------------------------------------


def _owner():
    """``HOST-PID`` of this process, as hidden folder names carry it."""
    return f"{re.sub(r'[^A-Za-z0-9.]', '_', socket.gethostname())}-{os.getpid()}"


def _alive(pid):
    if os.name == "nt":  # os.kill would terminate it; never clean up after a live-looking pid
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def staging_folder(out):
    """A new, empty hidden folder beside ``out`` to write its export into.

    Example
    -------
    >>> tmp = staging_folder(getfixture("tmp_path") / "m4ser")
    >>> tmp.name.startswith(".m4ser.tmp-") and str(os.getpid()) in tmp.name
    True
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-{_owner()}-"))


def clean_leftovers(out):
    """Remove what killed exports of ``out`` left beside it (see the module docstring).

    A staging folder or an old export renamed aside by a process of this host that no longer
    runs is deleted, except that an old export is first renamed back to ``out`` when ``out`` is
    missing (a kill between :func:`publish`'s two renames). Folders of running processes, of
    other hosts, and names this module did not write are left alone.

    Returns
    -------
    list of Path
        The folders removed or put back.
    """
    out = Path(out)
    if not out.parent.is_dir():
        return []
    pattern = re.compile(
        rf"^\.{re.escape(out.name)}\.(?P<kind>tmp|old)-(?P<host>.+)-(?P<pid>\d+)-[A-Za-z0-9_]+$"
    )
    host = _owner().rsplit("-", 1)[0]
    handled = []
    for path in sorted(out.parent.iterdir()):  # "old" before "tmp": put back before deleting
        found = pattern.match(path.name)
        if not found or found["host"] != host or _alive(int(found["pid"])):
            continue
        if found["kind"] == "old" and not out.exists():
            os.replace(path, out)
            logger.warning("%s: put back the export that a killed export left aside", out)
        else:
            shutil.rmtree(path, ignore_errors=True)
            logger.info("removed %s, left by a killed export (pid %s)", path, found["pid"])
        handled.append(path)
    return handled


def _exchange(a, b):
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False when the system
    or file system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError, TypeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV):
        return False
    raise OSError(code, os.strerror(code), os.fspath(b))


def publish(tmp, out, overwrite=False):
    """Move a finished folder ``tmp`` to ``out``; an existing ``out`` only goes with ``overwrite``.

    ``out`` is at every moment the old export or the new one where the two can be swapped in one
    step (Linux); elsewhere the old one is renamed aside, the new one in (the old one is put
    back if that fails) and the old one deleted.

    Example
    -------
    >>> root = getfixture("tmp_path")
    >>> for name in ("new", "newer"):
    ...     (root / name).mkdir(); _ = (root / name / "f").write_text(name)
    >>> publish(root / "new", root / "out")
    >>> publish(root / "newer", root / "out")
    Traceback (most recent call last):
    ...
    FileExistsError: .../out exists; pass --overwrite (overwrite=True) to replace it
    >>> publish(root / "newer", root / "out", overwrite=True)
    >>> (root / "out" / "f").read_text(), sorted(p.name for p in root.iterdir())
    ('newer', ['out'])
    """
    tmp, out = Path(tmp), Path(out)
    if not out.exists():
        os.replace(tmp, out)
        return
    if not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite (overwrite=True) to replace it")
    if _exchange(tmp, out):
        shutil.rmtree(tmp)  # the old export, now under the staging name
        return
    aside = out.with_name(f".{out.name}.old-{_owner()}-{secrets.token_hex(4)}")
    os.replace(out, aside)
    try:
        os.replace(tmp, out)
    except BaseException:
        os.replace(aside, out)
        raise
    shutil.rmtree(aside)


def make_shareable(folder):
    """Ordinary permissions (mkdtemp/mkstemp create owner-only ones), the umask respected."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o777 & ~umask)
        for name in files:
            os.chmod(os.path.join(root, name), 0o666 & ~umask)
