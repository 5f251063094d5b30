"""Table V rows for ``benchmarks/table5.py``: encoders, one ``M4SERBrain`` per row, batches, timing.

Each row is a run planned from a dict (:func:`m4ser_lobes.experiment.run.plan_run`: the Table IV
switches of ``hparams/m4ser.yaml`` with IEMOCAP's section, checked like any run) whose YAML objects
are built by :func:`m4ser_lobes.experiment.run.load_objects`; nothing is prepared or trained.
"""

import contextlib
import functools
import platform
import sys
import time
from pathlib import Path

import torch

from m4ser_lobes.experiment import studies

REPO = Path(__file__).resolve().parents[1]
# The four Table V rows are the Table VIII rows (every switch of hparams/m4ser.yaml explicit).
ROWS = {name: switches for name, (_, switches) in studies.ROWS.items()}
HYPOTHESES = [
    ("i think that is good", "i think that was good"),
    ("what a day", "what a good day today"),
    ("you know it was wrong", "you know it was wrong"),
    ("honestly the trip was horrible", "honestly the trip was so horrible"),
]


def log(message):
    """Progress on stderr (stdout carries the table)."""
    print(f"[table5 {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- models and batches
def save_encoders(folder, size):
    """Random speech/text encoders of the given size; returns their two folders.

    ``tiny``: the test encoders of :mod:`m4ser_lobes.testing.models` (width 64). ``base``: the shapes of
    facebook/hubert-base-ls960 and bert-base-uncased (V = 30,522), random weights, no download.
    """
    from m4ser_lobes.testing.models import save_tiny_speech_encoder, save_tiny_text_encoder

    folder = Path(folder)
    if size == "tiny":
        return (save_tiny_speech_encoder(folder / "speech", hidden_size=64),
                save_tiny_text_encoder(folder / "text", hidden_size=64))
    from transformers import BertConfig, BertModel, HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    from m4ser_lobes.testing.models import save_wordpiece_tokenizer

    HubertModel(HubertConfig(layerdrop=0.0)).save_pretrained(folder / "speech")
    Wav2Vec2FeatureExtractor(return_attention_mask=False).save_pretrained(folder / "speech")
    save_wordpiece_tokenizer(folder / "text")
    BertModel(BertConfig(vocab_size=30522), add_pooling_layer=False).save_pretrained(folder / "text")
    return folder / "speech", folder / "text"


def adam_class(lr, variant):
    """The optimiser class of one parameter group: Adam per tensor, or with foreach/fused kernels."""
    if variant == "per-tensor":
        return functools.partial(torch.optim.Adam, lr=lr, foreach=False, fused=False)
    return functools.partial(torch.optim.Adam, lr=lr, **{variant: True})


def make_brain(row, folders, args, results_folder, shared=None):
    """An ``M4SERBrain`` of one Table V row, ready for ``fit_batch`` (optimisers built).

    The row is a run planned from a dict (checked like any run) whose YAML objects are built;
    ``shared`` = (speech encoder, text encoder) of an earlier row: the row uses those modules
    (same computation, one copy in memory); its own freshly built copies are dropped.
    """
    from m4ser_lobes.brain import M4SERBrain
    from m4ser_lobes.corpora.iemocap import IEMOCAP
    from m4ser_lobes.experiment.run import load_objects, plan_run

    d_model, nhead = (64, 4) if args.size == "tiny" else (768, 12)
    overrides = {
        "data_folder": "unused", "results_folder": str(results_folder),
        "skip_prep": True,  # no corpus is read: the batches are built here
        "speech_encoder_source": str(folders[0]), "text_encoder_source": str(folders[1]),
        "d_model": d_model, "nhead": nhead, "ckpt_interval_minutes": 0, **ROWS[row],
    }
    run_opts = {"device": args.device, "precision": args.precision, "eval_precision": args.precision}
    run = plan_run(REPO / "hparams" / "m4ser.yaml", overrides, IEMOCAP, run_opts)
    hparams = load_objects(run)
    hparams["label_encoder"] = list(range(hparams["num_emotions"]))
    if args.adam != "yaml":
        for name in ("encoders", "head", "discriminator"):
            # the encoders' groups carry lr_speech_encoder / lr_text_encoder themselves
            hparams[f"opt_class_{name}"] = adam_class(hparams.get(f"lr_{name}", hparams["lr"]),
                                                      args.adam)
    model = hparams["modules"]["model"]
    if shared is not None:
        model.speech_encoder, model.text_encoder = shared
        hparams["speech_encoder"], hparams["text_encoder"] = shared
    brain = M4SERBrain(modules=hparams["modules"], hparams=hparams, run_opts=run.run_opts,
                       checkpointer=None)
    brain.on_fit_start()
    brain.on_stage_start("TRAIN")
    brain.modules.train()
    return brain


def make_examples(tokenizer, batch_size, seconds, seed=0):
    """Dataset items as the recipe's pipelines give them (``sig`` ... ``aec_targets``).

    Utterance i lasts ``seconds * (1 - 0.1 * (i % 3))``: a padded batch, as in training.
    """
    from m4ser_lobes.text.alignment import align_transcripts

    generator = torch.Generator().manual_seed(seed)
    examples = []
    for i in range(batch_size):
        hyp, ref = HYPOTHESES[i % len(HYPOTHESES)]
        aligned = align_transcripts(hyp, ref, tokenizer)
        samples = int(16000 * seconds * (1.0 - 0.1 * (i % 3)))
        examples.append({
            "id": f"utt{i}",
            "sig": torch.randn(samples, generator=generator),
            "emo_encoded": torch.tensor([i % 4]),
            "input_ids": torch.tensor(aligned.input_ids),
            "aed_labels": torch.tensor(aligned.labels),
            "aec_targets": aligned.targets,
        })
    return examples


@contextlib.contextmanager
def exported_view(model):
    """The model as ``m4ser_lobes.inference.export`` ships it: no AED head, no AEC decoder; eval mode."""
    heads = model.aed_head, model.aec_decoder
    model.aed_head = model.aec_decoder = None
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.aed_head, model.aec_decoder = heads
        model.train(was_training)


def inference_inputs(batch, device):
    """(wavs, wav_lens, input_ids, text_pad_mask) of a PaddedBatch, as ``compute_forward`` builds them."""
    from m4ser_lobes.masks import lengths_to_pad_mask, relative_to_absolute

    batch = batch.to(device)
    wavs, wav_lens = batch.sig
    input_ids, id_lens = batch.input_ids
    pad_mask = lengths_to_pad_mask(relative_to_absolute(id_lens, input_ids.shape[1]), input_ids.shape[1])
    return wavs, wav_lens, input_ids, pad_mask


def infer(brain, inputs):
    """Emotion logits of the exported-model path (what ``M4SERClassifier`` runs after tokenising)."""
    from m4ser_lobes.brain import unwrap

    model = unwrap(brain.modules.model)
    with exported_view(model), torch.no_grad(), brain.evaluation_ctx:
        return model(*inputs).logits


# ---------------------------------------------------------------------------- measurements
def synchronize(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device):
    """Seconds of ``fn()``, with the device synchronised on both sides."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def fit_step(brain, batch):
    """One training step: ``fit_batch`` with its optimiser steps (no gradient accumulation)."""
    brain.modules.train()
    brain.step = 1
    return brain.fit_batch(batch)


def build_rows(args, folder, rows):
    """Brains of the named rows sharing one copy of the encoders; and their batches."""
    from speechbrain.dataio.batch import PaddedBatch

    folders = save_encoders(Path(folder) / "encoders", args.size)
    brains, shared = {}, None
    for name in rows:
        log(f"building row {name}")
        brains[name] = make_brain(name, folders, args, Path(folder) / "results", shared)
        model = brains[name].modules.model
        shared = (model.speech_encoder, model.text_encoder)
    tokenizer = shared[1].tokenizer
    examples = make_examples(tokenizer, args.batch, args.seconds)
    return brains, PaddedBatch(examples), PaddedBatch(examples[:1])


def environment(args):
    env = {"torch": torch.__version__, "python": platform.python_version(),
           "threads": torch.get_num_threads(), "machine": platform.machine()}
    if str(args.device).startswith("cuda"):
        env["gpu"] = torch.cuda.get_device_name()
    return env

