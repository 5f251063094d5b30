"""``M4SERBrain``: the corpus-agnostic training loop shared by the IEMOCAP and MELD recipes.

Modules (``modules:`` in the YAML):
  ``model``          the composed :class:`m4ser_lobes.model.M4SER`;
  ``discriminator``  the modality discriminator D, present only when the YAML built it
                     (``use_gan``).

What runs is what was built: the GAN runs when a discriminator is in ``modules``, AED and AEC
when the model has their head and decoder; only ``use_lcl``, a loss switch without an object,
is read from the hparams. The loss terms are the active rows of
:data:`m4ser_lobes.losses.LOSS_TERMS`, each computed by the method ``loss_<name>``.

Each training batch runs the encoders and fusion ONCE, then two named phases (docs/design.md §5,
Alg. 1 lines 21–25):

1. ``discriminator`` phase — D on *detached* H_S^spe, H_T^spe, H_inv; minimise −(L_D + L_G)
   w.r.t. θ_D only; step D's own optimiser.
2. ``model`` phase — D frozen (no parameter of D enters the graph); L_G recomputed with the
   *updated* D on H_inv; minimise L_ER + α(β L_AED + L_AEC) + γ L_G + λ L_LCL; step the
   ``encoders`` and ``head`` optimisers.

Both phases keep SpeechBrain's machinery: autocast (``training_ctx``; fp16 with ONE GradScaler
across all optimisers, bf16 anywhere), gradient accumulation with DDP ``no_sync``, clipping of
every parameter group, non-finite checks, gradients cleared after each phase,
``optimizer_step`` counted. Optimisers are named (``encoders``, ``head``, ``discriminator``),
built in ``init_optimizers`` and registered as recoverables in one loop; the ``encoders`` Adam
holds one parameter group per encoder, each at its own learning rate (``lr_speech_encoder``,
``lr_text_encoder``: a pretrained encoder fine-tunes slower than the rest trains).
"""

import json
import logging
import os
from collections import defaultdict

import speechbrain as sb
import torch
from torch.nn.parallel import DistributedDataParallel

from m4ser_lobes import losses, switches
from m4ser_lobes.text.tags import IGNORE_INDEX
from m4ser_lobes.text.targets import DEFAULT_AEC_MAX_LEN, batch_correction_targets
from m4ser_lobes.utils.fileio import atomic_write_json
from m4ser_lobes.masks import (lengths_to_pad_mask, mean_over_time, mean_over_valid_positions,
                               relative_to_absolute)
from m4ser_lobes.metrics import (
    SELECTION_METRICS,
    calibration,
    emotion_metrics,
    per_class,
    plot_confusion_matrix,
    write_predictions_csv,
)

logger = logging.getLogger(__name__)

OPTIMIZER_NAMES = ("encoders", "head", "discriminator")
#: The parameter groups of the ``encoders`` optimiser, each with its ``lr_<name>``.
ENCODER_GROUPS = ("speech_encoder", "text_encoder")


def unwrap(module):
    """The module inside a DDP wrapper (or the module itself)."""
    return module.module if isinstance(module, DistributedDataParallel) else module


class M4SERBrain(sb.Brain):
    """Brain for M4SER and every Table IV ablation (hparams switches, see ``hparams/m4ser.yaml``).

    Required hparams: the weights of the active loss terms (``alpha beta gamma lam``), ``tau``
    and ``use_lcl`` (the loss switches that build nothing), one optimiser
    class per name in :data:`OPTIMIZER_NAMES` (``opt_class_encoders`` ...), the encoders'
    learning rates ``lr_speech_encoder`` and ``lr_text_encoder`` (:meth:`parameter_groups`;
    absent: the ``encoders`` optimiser's own), ``label_encoder``
    (set by the recipe), ``train_logger``, ``epoch_counter``; optional ``aec_max_len`` (16) and
    ``output_folder`` for the test-set files; ``max_tokens`` when ``use_aec`` without ``use_aed``;
    optional ``text_source`` (``hypothesis``; ``transcript`` refuses AED and AEC),
    optional ``selection_metric`` (``UA``; ``WA`` or ``W-F1``: the validation metric whose best
    checkpoint is kept and tested) and ``emotion_class_weights`` (a ``[C]`` tensor of L_ER class
    weights in label-encoder order, set by the recipe for ``class_weights: balanced``; None:
    the paper's plain cross-entropy).

    Logged per training epoch besides the loss terms: ``LCL_no_positive``, the share of
    training anchors of L_LCL without a same-class partner in their batch (skipped by the loss).
    ``train_log.txt`` opens with ``#`` lines that say what its numbers are (:meth:`log_header`):
    L_D is logged with the paper's sign, ≤ 0 (the objective D maximises; Fig. 8 plots it so).

    AEC target cap (:attr:`aec_target_cap`): selective correction (``use_aed``) decodes short
    spans, capped at ``aec_max_len`` target tokens (docs/design.md §4); the "w/o AED" ablation
    (``use_aec`` without ``use_aed``, Table IV C(1)) decodes the whole reference from [CLS], capped
    at the text length limit ``max_tokens``, so the decoder learns whole utterances and when to
    stop. Longer targets are cut (no [EOS] taught) and their share of the decoder sequences is
    logged as ``aec_truncated``.

    Loss terms: the rows of :data:`m4ser_lobes.losses.LOSS_TERMS` that the built parts and
    ``use_lcl`` turn on (:attr:`loss_terms`); each is computed by ``loss_<name>(outputs, batch,
    correction, emotions)``, which returns the term (or a dict of it and the logged-only terms it
    computes too), is logged under its paper name in training and weighed by
    :func:`m4ser_lobes.losses.joint_loss`.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        model = unwrap(self.modules.model)
        fusion = model.fusion
        # What runs is what was built (the YAML builds a part only when its switch is on).
        self.use_aed = model.aed_head is not None
        self.use_aec = model.aec_decoder is not None
        self.use_gan = "discriminator" in self.modules
        built = {"use_aed": self.use_aed, "use_aec": self.use_aec, "use_gan": self.use_gan}
        switches.check_switches(fusion.modalities, fusion.use_msr, fusion.use_mir, **built,
                                text_source=getattr(self.hparams, "text_source", "hypothesis"))
        # Loss switches that build nothing (use_lcl) are read from the hparams.
        values = {k: built[k] if k in built else bool(getattr(self.hparams, k))
                  for k in losses.loss_switches()}
        self.loss_terms = losses.active_terms(values)
        for term in self.loss_terms:
            method = f"loss_{term.computed_by or term.name}"
            if not callable(getattr(self, method, None)):
                raise TypeError(f"the loss term {term.paper} of losses.LOSS_TERMS has no "
                                f"{type(self).__name__}.{method}: add the method that computes it")
        self.loss_weights = {k: getattr(self.hparams, k)
                             for k in losses.objective_weights(self.loss_terms)}
        self.aec_target_cap = switches.aec_target_cap(
            self.use_aed, self.use_aec, getattr(self.hparams, "aec_max_len", DEFAULT_AEC_MAX_LEN),
            getattr(self.hparams, "max_tokens", None))
        self.selection_metric = getattr(self.hparams, "selection_metric", "UA")
        if self.selection_metric not in SELECTION_METRICS:
            raise ValueError(f"selection_metric={self.selection_metric!r} is not a validation "
                             f"metric: choose one of {', '.join(SELECTION_METRICS)}")
        weights = getattr(self.hparams, "emotion_class_weights", None)
        self.emotion_class_weights = None if weights is None else torch.as_tensor(
            weights, dtype=torch.float32, device=self.device)

    # ------------------------------------------------------------------ forward / objectives
    def compute_forward(self, batch, stage):
        """One forward of encoders, fusion and heads; returns (M4SEROutput, CorrectionBatch|None)."""
        batch = batch.to(self.device)
        wavs, wav_lens = batch.sig
        input_ids, id_lens = batch.input_ids
        text_pad_mask = lengths_to_pad_mask(
            relative_to_absolute(id_lens, input_ids.shape[1]), input_ids.shape[1]
        )
        correction = None
        if self.use_aec and stage == sb.Stage.TRAIN:
            bos, eos, pad = unwrap(self.modules.model).text_encoder.special_ids()
            correction = batch_correction_targets(
                batch.aec_targets, bos, eos, pad, max_len=self.aec_target_cap
            )
            correction = correction.to(self.device)
        outputs = self.modules.model(wavs, wav_lens, input_ids, text_pad_mask, correction)
        return outputs, correction

    def discriminator_logits(self, features, trainable):
        """D on [B,T_s,D] features -> [B,T_s] logits; frozen D leaves no trace in the graph."""
        discriminator = self.modules.discriminator
        if trainable:
            return discriminator(features)
        raw = unwrap(discriminator)
        raw.requires_grad_(False)
        try:
            return raw(features)
        finally:
            raw.requires_grad_(True)

    def adversarial_terms(self, outputs, trainable):
        """L_D, L_G (docs/design.md §5) and the mean D outputs per input; detached inputs when ``trainable``.

        D sees the three [B,T_s,D] inputs as one [3B,T_s,D] batch: one call, one DDP forward.
        """
        parts = [outputs.speech_specific, outputs.text_specific, outputs.invariant]
        if trainable:
            parts = [p.detach() for p in parts]
        logits = self.discriminator_logits(torch.cat(parts, dim=0), trainable)
        speech, text, invariant = logits.float().chunk(3, dim=0)
        pad_mask = outputs.speech_pad_mask
        loss_d, loss_g = losses.gan_losses(speech, text, invariant, pad_mask)
        means = {
            f"D({name})": mean_over_valid_positions(torch.sigmoid(z.detach()), pad_mask)
            for name, z in (("H_S^spe", speech), ("H_T^spe", text), ("H_inv", invariant))
        }
        return loss_d, loss_g, means

    def compute_objectives(self, predictions, batch, stage):
        """The model-phase loss: L_ER + α(β L_AED + L_AEC) + γ L_G + λ L_LCL (Alg. 1 line 25).

        Every active row of :data:`~m4ser_lobes.losses.LOSS_TERMS` is computed by its
        ``loss_<name>`` method (in training; at every stage when ``every_stage``) and, in
        training, logged under its paper name.
        """
        outputs, correction = predictions
        emotions = batch.emo_encoded.data.squeeze(1).to(self.device)
        train = stage == sb.Stage.TRAIN
        terms = {}
        for term in self.loss_terms:
            if term.computed_by is None and (train or term.every_stage):
                value = getattr(self, f"loss_{term.name}")(outputs, batch, correction, emotions)
                terms.update(value if isinstance(value, dict) else {term.name: value})
        objective = {t.name for t in self.loss_terms if t.in_objective}
        loss = losses.joint_loss({k: v for k, v in terms.items() if k in objective},
                                 self.loss_weights)
        if train:
            for term in self.loss_terms:
                self._log_value(term.paper, terms[term.name])
        else:
            probabilities = torch.softmax(outputs.logits.float(), dim=-1)
            self.predictions["ids"].extend(batch.id)
            self.predictions["true"].extend(emotions.tolist())
            self.predictions["pred"].extend(probabilities.argmax(dim=-1).tolist())
            self.predictions["prob"].extend(probabilities.tolist())
            if stage == sb.Stage.TEST and getattr(self.hparams, "save_embeddings", False):
                self._keep_embeddings(outputs)
        return loss

    def _keep_embeddings(self, outputs):
        """H_ap and the masked time-means of H_S^spe, H_T^spe, H_inv of a test batch (Figs. 9, 10);
        row i is utterance i's own (padding never reaches a mean)."""
        self.embeddings["pooled"].append(outputs.pooled.detach().float().cpu())
        for name in ("speech_specific", "text_specific", "invariant"):
            part = getattr(outputs, name, None)
            if part is not None:
                mean = mean_over_time(part.detach().float(), outputs.speech_pad_mask)
                self.embeddings[name].append(mean.cpu())

    def write_embeddings(self, path, names):
        """``embeddings.npz``: ids, labels, H_ap and the part means, in utterance-id order."""
        import numpy as np

        ids = self.predictions["ids"]
        order = sorted(range(len(ids)), key=ids.__getitem__)
        arrays = {k: torch.cat(v).numpy()[order] for k, v in self.embeddings.items()}
        labels = np.array([names[self.predictions["true"][i]] for i in order])
        tmp = f"{path}.tmp.npz"
        np.savez(tmp, ids=np.array([ids[i] for i in order]), labels=labels, **arrays)
        os.replace(tmp, path)

    # One method per row of losses.LOSS_TERMS: (outputs, batch, correction, emotions) -> term.
    def loss_er(self, outputs, batch, correction, emotions):
        """L_ER (Eq. 19), class-weighted when ``emotion_class_weights`` is set."""
        return losses.emotion_loss(outputs.logits.float(), emotions,
                                   class_weights=self.emotion_class_weights)

    def loss_aed(self, outputs, batch, correction, emotions):
        """L_AED (Eq. 3) on the K/D/C tags of the hypothesis tokens (padding ignored)."""
        labels = batch.aed_labels.data.to(self.device)
        labels = labels.masked_fill(outputs.text_pad_mask, IGNORE_INDEX)
        return losses.aed_loss(outputs.aed_logits.float(), labels)

    def loss_aec(self, outputs, batch, correction, emotions):
        """L_AEC (Eq. 7); logs ``aec_truncated``, the share of decoder targets cut at the cap."""
        self._log_value("aec_truncated", correction.num_truncated, count=correction.num_sequences)
        return losses.aec_loss(outputs.aec_logits.float(), correction.decoder_labels)

    def loss_g(self, outputs, batch, correction, emotions):
        """L_G with the frozen, updated D, and the logged-only L_D and L_GAN = L_D + L_G; logs D(·)."""
        loss_d, loss_g, means = self.adversarial_terms(outputs, trainable=False)
        for name, value in means.items():
            self._log_value(name, value)
        return {"g": loss_g, "d": loss_d, "gan": loss_d + loss_g}

    def loss_lcl(self, outputs, batch, correction, emotions):
        """L_LCL (Eq. 21); logs ``LCL_no_positive``, the share of anchors it skips."""
        self._log_value("LCL_no_positive", losses.anchors_without_positive(emotions),
                        count=len(emotions))
        return losses.label_contrastive_loss(outputs.pooled.float(), emotions,
                                             temperature=self.hparams.tau)

    def _log_value(self, name, value, count=1):
        """Add ``value`` (a sum over ``count`` items) to the stage's running mean of ``name``.

        Tensors stay on device: no sync per step.
        """
        if torch.is_tensor(value):
            value = value.detach().float()
        self.term_sums[name] = self.term_sums[name] + value
        self.term_counts[name] += count

    # ------------------------------------------------------------------ the two-phase update
    def fit_batch(self, batch):
        """One forward, then the ``discriminator`` and ``model`` phases (docs/design.md §5)."""
        should_step = self.step % self.grad_accumulation_factor == 0
        self.on_fit_batch_start(batch, should_step)
        with self.no_sync(not should_step):
            with self.training_ctx:
                predictions = self.compute_forward(batch, sb.Stage.TRAIN)
            if self.use_gan:
                self._discriminator_phase(predictions[0], should_step)
            with self.training_ctx:
                loss = self.compute_objectives(predictions, batch, sb.Stage.TRAIN)
            scaled = self.scaler.scale(loss / self.grad_accumulation_factor)
            self.check_loss_isfinite(scaled)
            scaled.backward()
        if should_step:
            self._step(("encoders", "head"))
            self.scaler.update()  # once per iteration, for all optimisers
            self.zero_grad(set_to_none=True)
            self.optimizer_step += 1
        self.on_fit_batch_end(batch, predictions, loss, should_step)
        return loss.detach().cpu()

    def _discriminator_phase(self, outputs, should_step):
        with self.training_ctx:
            loss_d, loss_g, _ = self.adversarial_terms(outputs, trainable=True)
            objective = -(loss_d + loss_g)  # D maximises L_D + L_G (Alg. 1 line 23)
        scaled = self.scaler.scale(objective / self.grad_accumulation_factor)
        self.check_loss_isfinite(scaled)  # counts towards --nonfinite_patience, as the model's
        scaled.backward()
        if should_step:
            self._step(("discriminator",))
            self.optimizers_dict["discriminator"].zero_grad(set_to_none=True)

    def _step(self, names):
        """Unscale, clip every parameter group, check, and step the named optimisers."""
        active = [self.optimizers_dict[n] for n in names if n in self.optimizers_dict]
        for optimizer in active:
            self.scaler.unscale_(optimizer)
            params = [p for group in optimizer.param_groups for p in group["params"]]
            if self.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm)
        if not self.scaler.is_enabled() and self.skip_nonfinite_grads:
            self.check_gradients()
        for optimizer in active:
            self.scaler.step(optimizer)

    # ------------------------------------------------------------------ optimisers
    def parameter_groups(self):
        """Trainable parameter groups (torch's ``{"params": ..., "name": ...}`` dicts) by optimiser.

        ``encoders``: one group per built encoder's pretrained network, named ``speech_encoder``
        / ``text_encoder``, with its learning rate ``lr_speech_encoder`` / ``lr_text_encoder``
        (absent from the hparams: the optimiser's own lr); ``head``: the rest of the model (the
        encoders' projections included); ``discriminator``: D. Groups without trainable
        parameters (a frozen encoder) are left out.
        """
        model = unwrap(self.modules.model)
        encoders = []
        for name in ENCODER_GROUPS:
            encoder = getattr(model, name)
            params = [] if encoder is None else [
                p for p in encoder.model.parameters() if p.requires_grad]
            lr = getattr(self.hparams, f"lr_{name}", None)
            encoders.append({"params": params, "name": name, **({} if lr is None else {"lr": lr})})
        encoder_ids = {id(p) for group in encoders for p in group["params"]}
        head = [p for p in model.parameters() if p.requires_grad and id(p) not in encoder_ids]
        groups = {"encoders": encoders, "head": [{"params": head, "name": "head"}]}
        if self.use_gan:
            groups["discriminator"] = [{"params": list(unwrap(
                self.modules.discriminator).parameters()), "name": "discriminator"}]
        return {name: [g for g in found if g["params"]] for name, found in groups.items()}

    def init_optimizers(self):
        """Build one named optimiser per parameter group and register each as a recoverable."""
        self.optimizers_dict = {}
        for name, params in self.parameter_groups().items():
            if not params:
                continue
            optimizer = getattr(self.hparams, f"opt_class_{name}")(params)
            self.optimizers_dict[name] = optimizer
            if self.checkpointer is not None:
                self.checkpointer.add_recoverable(f"optimizer_{name}", optimizer)
        self.optimizer = self.optimizers_dict["head"]

    # ------------------------------------------------------------------ stages
    def log_header(self):
        """The ``#`` lines that open ``train_log.txt``: what its numbers are, signs included."""
        lines = [("# train: batch means over the epoch. loss = the model-phase objective "
                  "L_ER + alpha (beta L_AED + L_AEC) + gamma L_G + lambda L_LCL (active terms, "
                  "Alg. 1 line 25); each L_* is one term under its paper name, unweighted."),
                 ("# valid/test: WA = accuracy, UA = mean per-class recall, W-F1 (percent); "
                  f"the checkpoint of the best valid {self.selection_metric} is tested.")]
        if self.use_gan:
            lines.append(
                "# L_D = E[log D(H_S^spe)] + E[log(1 - D(H_T^spe))] <= 0 is the discriminator's "
                "objective, which D MAXIMISES: logged with the paper's sign, negative, rising "
                "toward 0 as D learns (Fig. 8). L_G >= 2 ln 2 = 1.386 (its value at D = 0.5); "
                "L_GAN = L_D + L_G; D(.) are D's mean outputs (0.5 at equilibrium).")
        return lines

    def on_fit_start(self):
        """SpeechBrain's start of fit, then :meth:`log_header` into a new ``train_log.txt``."""
        super().on_fit_start()
        path = getattr(getattr(self.hparams, "train_logger", None), "save_file", None)
        if path and sb.utils.distributed.if_main_process() and (
                not os.path.exists(path) or os.path.getsize(path) == 0):
            with open(path, "a", encoding="utf-8") as fout:  # a resumed run keeps its header
                fout.write("\n".join(self.log_header()) + "\n")

    def on_stage_start(self, stage, epoch=None):
        self.term_sums = defaultdict(float)
        self.term_counts = defaultdict(int)
        self.predictions = defaultdict(list)
        self.embeddings = defaultdict(list)

    def on_stage_end(self, stage, stage_loss, epoch=None):
        stats = {"loss": stage_loss}
        if stage == sb.Stage.TRAIN:
            stats.update(
                {
                    k: float(self.term_sums[k]) / max(self.term_counts[k], 1)
                    for k in sorted(self.term_sums)
                }
            )
            self.train_stats = stats
            return
        num_classes = len(self.hparams.label_encoder)
        metrics = emotion_metrics(self.predictions["true"], self.predictions["pred"], num_classes)
        stats.update({k: metrics[k] for k in ("WA", "UA", "W-F1")})
        if stage == sb.Stage.VALID:
            self.hparams.train_logger.log_stats(
                stats_meta={"epoch": epoch},
                train_stats=getattr(self, "train_stats", None),
                valid_stats=stats,
            )
            self._append_history(epoch, stats)
            self.checkpointer.save_and_keep_only(meta=stats, max_keys=[self.selection_metric])
        else:
            self.hparams.train_logger.log_stats(
                stats_meta={"Epoch loaded": self.hparams.epoch_counter.current},
                test_stats=stats,
            )
            if sb.utils.distributed.if_main_process():
                self.write_test_outputs(metrics)

    def _append_history(self, epoch, valid_stats):
        """Per-epoch train and valid statistics in ``history.json`` (loss curves, Fig. 8)."""
        if not sb.utils.distributed.if_main_process():
            return
        path = os.path.join(self.hparams.output_folder, "history.json")
        history = []
        if os.path.exists(path):
            with open(path, encoding="utf-8") as fin:
                history = [h for h in json.load(fin) if h["epoch"] != epoch]
        history.append(
            {"epoch": epoch, "train": getattr(self, "train_stats", {}), "valid": valid_stats}
        )
        atomic_write_json(path, history)

    def write_test_outputs(self, metrics):
        """predictions.csv, test_metrics.json and confusion_matrix.png in the output folder."""
        out = self.hparams.output_folder
        names = [self.hparams.label_encoder.decode_ndim(i) for i in range(len(self.hparams.label_encoder))]
        # Evaluation batches are sorted by duration: the file is written in utterance-id order.
        ids = self.predictions["ids"]
        order = sorted(range(len(ids)), key=ids.__getitem__)
        write_predictions_csv(
            os.path.join(out, "predictions.csv"),
            *([self.predictions[k][i] for i in order] for k in ("ids", "true", "pred", "prob")),
            names,
        )
        # How the tested checkpoint was chosen and the batches drawn (``run_protocol``, set by
        # m4ser_lobes.experiment.run), beside the numbers.
        ran = dict(getattr(self.hparams, "run_protocol", None) or {},
                   selection_metric=self.selection_metric)
        # The paper's figures of the run's row (``paper_result``, set there too), when it has any.
        paper = getattr(self.hparams, "paper_result", None)
        # ECE, NLL and Brier score of the test probabilities (beyond the paper).
        calibrated = calibration([names[t] for t in self.predictions["true"]], names,
                                 self.predictions["prob"])
        atomic_write_json(
            os.path.join(out, "test_metrics.json"),
            dict(metrics, classes=names, per_class=per_class(metrics, names), **ran,
                 calibration=calibrated, **({"paper": paper} if paper else {})),
        )
        if self.embeddings:
            self.write_embeddings(os.path.join(out, "embeddings.npz"), names)
        plot_confusion_matrix(
            metrics["confusion"], names, os.path.join(out, "confusion_matrix.png"),
            title=f"WA {metrics['WA']:.1f}  UA {metrics['UA']:.1f}  W-F1 {metrics['W-F1']:.1f}",
        )
