"""A run that starts from another run's checkpoint (the few-shot study's fine-tuning, Table IX).

Three steps, each safe to repeat:

1. :func:`checkpoint_origin`: the source run's best checkpoint and its model's SHA-1 (the new
   run's ``init_from``, part of its identity).
2. :func:`seed_finetune_checkpoint`: a copy of that checkpoint in the new run's save folder,
   :data:`START` (``CKPT+init``), with the epoch counter at 0, the optimisers' state emptied
   (their learning rates the new run's) and no validation metric yet. SpeechBrain's ordinary
   recovery then starts training from it.
3. :func:`score_start` (called by :func:`m4ser_lobes.experiment.run.train` before ``fit`` when
   ``init_from`` is set): the start is scored on the run's validation set and its metrics are
   written into its ``CKPT.yaml``, so that the start is a selection candidate like every epoch:
   when no fine-tuned epoch beats it on validation, the start itself is kept and tested, and
   fine-tuning never ends worse (on validation) than no fine-tuning.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

from m4ser_lobes.experiment.settings import ConfigError

logger = logging.getLogger(__name__)

#: The folder name of a fine-tuning run's starting checkpoint in its save folder.
START = "CKPT+init"


def checkpoint_origin(source_save, max_key="UA"):
    """The best checkpoint (``max_key``) of a run's save folder and its model's SHA-1.

    Returns
    -------
    dict
        ``{"source_checkpoint": absolute path, "model_sha1": ...}``.

    Raises
    ------
    m4ser_lobes.experiment.settings.ConfigError
        The folder holds no finished checkpoint (one line).
    """
    from m4ser_lobes.checkpoints import AtomicCheckpointer
    from m4ser_lobes.utils.identity import file_digest

    best = AtomicCheckpointer(source_save).find_checkpoint(max_key=max_key)  # whole ones only
    if best is None:
        raise ConfigError(f"{source_save} holds no checkpoint with a validation {max_key}: run "
                          "(or finish) the source run first")
    model_file = Path(best.path) / "model.ckpt"
    return {"source_checkpoint": str(Path(best.path).resolve()),
            "model_sha1": file_digest(model_file)}


def seed_finetune_checkpoint(source_save, target_save, lrs=None, max_key="UA", origin=None):
    """Start a run in ``target_save`` from the best checkpoint of the run in ``source_save``.

    The best checkpoint (``max_key``) is copied into ``target_save/CKPT+init`` with: the epoch
    counter at 0, ``brain.ckpt`` steps at 0, every optimiser's state emptied (its learning rates
    set from ``lrs``: parameter-group name or optimiser name -> lr, e.g. ``{"text_encoder": 2e-5,
    "head": 1e-5}`` for the group ``text_encoder`` and the optimiser ``optimizer_head``), and
    a meta without validation metrics (:func:`score_start` adds them when the run starts), so
    the next ``fit`` recovers it as its starting point. ``label_encoder.txt`` is copied too
    (the class indices of the classifier). Does nothing when ``target_save`` already holds a
    checkpoint (the run is under way: it resumes). ``origin``: :func:`checkpoint_origin` of
    ``source_save`` when the caller already has it (the model's SHA-1 is not computed again).

    Returns
    -------
    dict
        ``{"source_checkpoint": path, "model_sha1": ...}`` (what the run started from).
    """
    import torch
    import yaml

    source_save, target_save = Path(source_save), Path(target_save)
    origin = origin or checkpoint_origin(source_save, max_key)
    best = Path(origin["source_checkpoint"])
    if any(p.is_dir() and p.name.startswith("CKPT") for p in target_save.glob("CKPT*")):
        return origin
    staging = target_save / f".{START}.tmp"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    for path in sorted(best.iterdir()):
        name = path.name
        if name == "CKPT.yaml":
            continue
        if name == "counter.ckpt":
            (staging / name).write_text("0")
        elif name == "brain.ckpt":
            (staging / name).write_text(yaml.dump(
                {"step": 0, "avg_train_loss": 0.0, "optimizer_step": 0}))
        elif name.startswith("optimizer_"):
            state = torch.load(path, map_location="cpu")
            state["state"] = {}
            default = (lrs or {}).get(name[len("optimizer_"):-len(".ckpt")])
            for group in state["param_groups"]:
                lr = (lrs or {}).get(group.get("name"), default)  # a named group's own lr first
                if lr is not None:
                    group["lr"] = lr
                    group["initial_lr"] = lr
            torch.save(state, staging / name)
        else:
            shutil.copy2(path, staging / name)
    meta = {"end-of-epoch": True, "unixtime": time.time(), "init_from": origin}
    (staging / "CKPT.yaml").write_text(yaml.dump(meta))
    encoder = source_save / "label_encoder.txt"
    if encoder.is_file():
        shutil.copy2(encoder, target_save / "label_encoder.txt")
    staging.rename(target_save / START)
    return origin


def score_start(brain, valid_set, loader_kwargs=None):
    """Score a fine-tuning run's start (:data:`START`) on ``valid_set`` and keep the metrics in
    its ``CKPT.yaml``: the start becomes a candidate of the best-of selection.

    Does nothing when the save folder holds no unscored start (an ordinary run, or a start
    scored before a resume). The start's weights are loaded, the validation set is run as an
    epoch's validation runs (same forward, same metrics), the result is logged as epoch 0 in
    ``train_log.txt`` and written into the checkpoint's metadata (atomically; the model, the
    counter and the random state that ``fit`` recovers are untouched).

    Arguments
    ---------
    brain : m4ser_lobes.brain.M4SERBrain
        The run's Brain, before ``fit``.
    valid_set : Dataset or DataLoader
        The run's validation set.
    loader_kwargs : dict, optional
        Its loader options (those ``fit`` uses for it).

    Returns
    -------
    dict or None
        The validation statistics of the start (``loss``, ``WA``, ``UA``, ``W-F1``), or None.
    """
    import speechbrain as sb
    import torch
    import yaml

    from m4ser_lobes.metrics import emotion_metrics
    from m4ser_lobes.utils.fileio import atomic_write_text

    checkpointer = brain.checkpointer
    start = next((c for c in checkpointer.list_checkpoints() if Path(c.path).name == START), None)
    if start is None or brain.selection_metric in start.meta:
        return None
    checkpointer.load_checkpoint(start)
    loader = valid_set if isinstance(valid_set, torch.utils.data.DataLoader) else \
        brain.make_dataloader(valid_set, stage=sb.Stage.VALID, ckpt_prefix=None,
                              **(loader_kwargs or {}))
    brain.on_stage_start(sb.Stage.VALID, 0)
    brain.modules.eval()
    losses = []
    with torch.no_grad():
        for batch in loader:
            losses.append(float(brain.evaluate_batch(batch, stage=sb.Stage.VALID)))
    metrics = emotion_metrics(brain.predictions["true"], brain.predictions["pred"],
                              len(brain.hparams.label_encoder))
    stats = {"loss": sum(losses) / max(len(losses), 1),
             **{k: float(metrics[k]) for k in ("WA", "UA", "W-F1")}}
    brain.hparams.train_logger.log_stats(stats_meta={"epoch": 0}, valid_stats=stats)
    logger.info("fine-tuning start %s (%s) on the validation set: %s -- a selection candidate",
                START, start.meta.get("init_from", {}).get("source_checkpoint"),
                "  ".join(f"{k} {v:.2f}" for k, v in stats.items()))
    if sb.utils.distributed.if_main_process():
        meta = {k: v for k, v in start.meta.items()}
        meta.update(stats)
        atomic_write_text(os.path.join(start.path, "CKPT.yaml"), yaml.dump(meta))
    sb.utils.distributed.ddp_barrier()
    return stats
