"""Length-bucketed training batches and sorted evaluation (``m4ser_lobes/data/batching.py``).

Durations: the IEMOCAP full release is not available to the tests, so "IEMOCAP-like" durations
are an ASSUMPTION: 5531 log-normal draws with mean 4.55 s and standard deviation 3.2 s (the
published statistics of the corpus' utterances), cropped at 20 s like training
(``max_audio_seconds``). The sampler and loaders are SpeechBrain's own; the Brain tests train a
real (one-weight) ``sb.Brain`` with checkpoints, resume, and ``torchrun`` DDP on CPU.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import speechbrain as sb
import torch
from speechbrain.dataio.dataloader import make_dataloader
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.dataio.sampler import DistributedSamplerWrapper, ReproducibleRandomSampler

from m4ser_lobes.data import batching

IEMOCAP_UTTERANCES = 5531
IEMOCAP_MEAN_SECONDS, IEMOCAP_SD_SECONDS = 4.55, 3.2  # assumption, see the module docstring
TRAIN_CROP_SECONDS = 20.0
BATCH_SIZE = 16
RATE = 100  # toy "samples" per second in the loader tests (real audio is 16 kHz)


def iemocap_like_durations(n=IEMOCAP_UTTERANCES, seed=0):
    """Log-normal durations with IEMOCAP's mean and standard deviation (seconds, 0.01 s steps)."""
    sigma2 = np.log(1 + IEMOCAP_SD_SECONDS**2 / IEMOCAP_MEAN_SECONDS**2)
    mu = np.log(IEMOCAP_MEAN_SECONDS) - sigma2 / 2
    draws = np.random.default_rng(seed).lognormal(mu, np.sqrt(sigma2), n)
    return np.maximum(np.round(draws, 2), 0.3).tolist()


def manifest_dataset(durations, with_signal=False):
    """A DynamicItemDataset of ``duration`` entries; ``sig``: ones, RATE samples a second."""
    data = {f"utt{i:05d}": {"duration": d} for i, d in enumerate(durations)}
    dataset = DynamicItemDataset(data)
    if with_signal:

        @sb.utils.data_pipeline.takes("duration")
        @sb.utils.data_pipeline.provides("sig")
        def signal(duration):
            return torch.ones(round(duration * RATE))

        dataset.add_dynamic_item(signal)
        dataset.set_output_keys(["id", "sig"])
    return dataset


def epoch_batches(sampler, epoch):
    """The batches a sampler yields in ``epoch``, as the Brain drives it (set_epoch, then iter)."""
    sampler.set_epoch(epoch)
    return [list(batch) for batch in sampler]


@pytest.fixture(scope="module")
def iemocap_durations():
    return iemocap_like_durations()


@pytest.fixture(scope="module")
def train_durations(iemocap_durations):
    """What the sampler sees in training: durations cropped at ``max_audio_seconds``."""
    return [min(d, TRAIN_CROP_SECONDS) for d in iemocap_durations]


def bucketed(durations, **kwargs):
    kwargs = {"batch_size": BATCH_SIZE, "seed": 1986, "max_audio_seconds": TRAIN_CROP_SECONDS,
              **kwargs}
    return batching.train_loader_kwargs(manifest_dataset(durations), **kwargs)["batch_sampler"]


# ------------------------------------------------------------------------------ the sampler
@pytest.mark.parametrize("max_batch_seconds", [None, 60.0])
def test_every_utterance_once_per_epoch(iemocap_durations, max_batch_seconds):
    sampler = bucketed(iemocap_durations, max_batch_seconds=max_batch_seconds)
    for epoch in (1, 2, 3):
        seen = [i for batch in epoch_batches(sampler, epoch) for i in batch]
        assert sorted(seen) == list(range(IEMOCAP_UTTERANCES)), f"epoch {epoch}"


def test_order_changes_with_the_epoch_and_repeats_with_the_seed(iemocap_durations):
    sampler = bucketed(iemocap_durations)
    first, second = epoch_batches(sampler, 1), epoch_batches(sampler, 2)
    assert first != second
    # not only the order of the batches: which utterances share a batch changes too
    assert {frozenset(b) for b in first} != {frozenset(b) for b in second}
    assert epoch_batches(bucketed(iemocap_durations), 2) == second  # a fresh run, same seed
    assert epoch_batches(bucketed(iemocap_durations, seed=7), 2) != second


def test_count_batches_hold_batch_size_utterances(iemocap_durations):
    sampler = bucketed(iemocap_durations)  # max_batch_seconds None: a count
    sizes = [len(batch) for batch in epoch_batches(sampler, 1)]
    assert max(sizes) == BATCH_SIZE
    # only a bucket's last batch is smaller: at most one per bucket
    assert sum(size < BATCH_SIZE for size in sizes) <= batching.DEFAULT_NUM_BUCKETS
    assert np.mean(sizes) > 0.95 * BATCH_SIZE
    assert len(sampler) == len(epoch_batches(sampler, 5))  # DDP needs a constant length


def test_seconds_batches_stay_within_max_batch_seconds():
    durations = iemocap_like_durations(n=2000, seed=3) + [45.0]  # one clip longer than the max
    limit = 40.0
    sampler = batching.train_loader_kwargs(
        manifest_dataset(durations), BATCH_SIZE, max_batch_seconds=limit, seed=0
    )["batch_sampler"]
    batches = epoch_batches(sampler, 1)
    for batch in batches:
        total = sum(durations[i] for i in batch)
        assert total <= limit or len(batch) == 1, (total, batch)
    too_long = sorted(i for i, d in enumerate(durations) if d > limit)
    assert too_long and sorted(b for b in batches if sum(durations[i] for i in b) > limit) == [
        [i] for i in too_long
    ]  # a clip longer than the limit: a batch alone


@pytest.mark.parametrize("max_batch_seconds", [None, 70.0])
def test_bucketing_keeps_padding_under_ten_percent(train_durations, max_batch_seconds):
    sampler = bucketed(train_durations, max_batch_seconds=max_batch_seconds)
    for epoch in (1, 2):
        share = batching.padding_fraction(train_durations, epoch_batches(sampler, epoch))
        assert share <= 0.10, f"epoch {epoch}: {share:.1%} padding"


def test_random_batches_pad_much_more(train_durations):
    """Today's loader (``shuffle: True``, ``batch_size: 16``): about 60 % padding."""
    order = list(ReproducibleRandomSampler(train_durations, seed=1986))
    random_batches = [order[i:i + BATCH_SIZE] for i in range(0, len(order), BATCH_SIZE)]
    random_share = batching.padding_fraction(train_durations, random_batches)
    bucketed_share = batching.padding_fraction(
        train_durations, epoch_batches(bucketed(train_durations), 1)
    )
    assert random_share > 0.4
    assert bucketed_share < random_share / 4


def test_a_small_training_set_gets_fewer_buckets():
    """57 utterances, batches of 8: 7 buckets, not 20 (one small batch per bucket)."""
    durations = iemocap_like_durations(n=57, seed=6)
    sampler = batching.train_loader_kwargs(manifest_dataset(durations), 8)["batch_sampler"]
    sizes = [len(batch) for batch in epoch_batches(sampler, 1)]
    assert sum(sizes) == 57 and len(sizes) <= 57 // 8 + 8  # a partial batch per bucket at most
    assert batching.padding_fraction(durations, epoch_batches(sampler, 2)) < 0.2


@pytest.mark.parametrize("bad", [0, 2.5, "20", None])
def test_a_bad_num_buckets_is_refused(bad):
    with pytest.raises(ValueError, match="num_buckets"):
        batching.train_loader_kwargs(manifest_dataset([1.0, 2.0]), 1, num_buckets=bad)


def test_bucketing_off_is_the_random_loader():
    kwargs = batching.train_loader_kwargs(
        manifest_dataset([1.0, 2.0]), 16, bucketing=False, num_workers=2, seed=5
    )
    assert set(kwargs) == {"batch_size", "sampler", "num_workers"}
    assert (kwargs["batch_size"], kwargs["num_workers"]) == (16, 2)
    assert isinstance(kwargs["sampler"], ReproducibleRandomSampler)
    assert batching.epoch_sampler(kwargs) is kwargs["sampler"]


def test_the_table_one_configuration_draws_random_batches():
    """hparams/m4ser.yaml trains on random batches (the paper's); bucketing is a switch."""
    from m4ser_lobes.experiment.settings import load_values

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    values = load_values(os.path.join(repo, "hparams", "m4ser.yaml"),
                         "data_folder: /d\nnum_emotions: 4")
    assert values["bucketing"] is False and values["batch_size"] == 16


# ------------------------------------------------------------------------------ real loaders
def test_padding_fraction_is_what_the_loader_pads():
    durations = iemocap_like_durations(n=300, seed=5)
    dataset = manifest_dataset(durations, with_signal=True)
    kwargs = batching.train_loader_kwargs(dataset, 8, num_buckets=6, seed=0)
    index = {f"utt{i:05d}": i for i in range(len(durations))}
    batches, padded, real = [], 0, 0
    for batch in make_dataloader(dataset, **kwargs):
        sig, lens = batch.sig
        padded += sig.numel()
        real += int(sig.ne(0).sum())
        batches.append([index[u] for u in batch.id])
    samples = [round(d * RATE) for d in durations]
    assert batching.padding_fraction(samples, batches) == pytest.approx((padded - real) / padded)
    assert sorted(i for b in batches for i in b) == list(range(len(durations)))


@pytest.mark.parametrize("sort", [True, False])
def test_eval_loader_evaluates_every_utterance_once(sort):
    durations = iemocap_like_durations(n=50, seed=2)
    dataset = manifest_dataset(durations, with_signal=True)
    kwargs = batching.eval_loader_kwargs(dataset, batch_size=BATCH_SIZE, sort=sort)
    batches = [list(batch.id) for batch in make_dataloader(dataset, **kwargs)]
    ids = [u for batch in batches for u in batch]
    assert sorted(ids) == sorted(dataset.data_ids) and len(ids) == len(durations)
    assert [len(b) for b in batches] == [16, 16, 16, 2]
    seconds = [durations[int(u[3:])] for u in ids]
    if sort:
        assert seconds == sorted(durations, reverse=True)
        assert [list(batch.id) for batch in make_dataloader(dataset, **kwargs)] == batches
    else:
        assert ids == dataset.data_ids


def test_a_manifest_without_durations_is_refused_with_a_fix():
    dataset = DynamicItemDataset({"Ses01F_impro01_F000": {"wav": "x.wav"}})
    with pytest.raises(ValueError, match="Ses01F_impro01_F000.*duration.*--bucketing=False"):
        batching.train_loader_kwargs(dataset, 16)


@pytest.mark.parametrize("bad", [0, -5.0, True, "60"])
def test_a_bad_max_batch_seconds_is_refused(bad):
    with pytest.raises(ValueError, match="max_batch_seconds"):
        batching.train_loader_kwargs(manifest_dataset([1.0, 2.0]), 16, max_batch_seconds=bad)


# ------------------------------------------------------------------------------ sb.Brain
class Interrupted(Exception):
    """Stands for a killed job."""


class RecordingBrain(sb.Brain):
    """One weight; records the utterance ids of every training batch, per epoch."""

    def on_fit_start(self):
        super().on_fit_start()
        self.batches, self.stop_at = {}, getattr(self, "stop_at", None)

    def on_stage_start(self, stage, epoch=None):
        self.epoch = epoch

    def compute_forward(self, batch, stage):
        sig, _ = batch.sig
        return self.modules.model(sig.mean(dim=1, keepdim=True))

    def compute_objectives(self, predictions, batch, stage):
        return predictions.pow(2).mean()

    def fit_batch(self, batch):
        self.batches.setdefault(self.epoch, []).append(sorted(batch.id))
        if self.stop_at == (self.epoch, self.step):
            raise Interrupted
        return super().fit_batch(batch)


def train(save_folder, dataset, epochs, register_sampler=True, stop_at=None, bucketing=True,
          seed=11):
    """Fit a RecordingBrain on bucketed (or random) batches; checkpoints every 2 steps in
    ``save_folder``."""
    model = torch.nn.Linear(1, 1)
    counter = sb.utils.epoch_loop.EpochCounter(epochs)
    checkpointer = sb.utils.checkpoints.Checkpointer(
        save_folder, recoverables={"model": model, "counter": counter}
    )
    brain = RecordingBrain(
        modules={"model": model},
        opt_class=lambda params: torch.optim.SGD(params, lr=0.01),
        run_opts={"device": "cpu", "noprogressbar": True, "ckpt_interval_steps": 2},
        checkpointer=checkpointer,
    )
    brain.stop_at = stop_at
    kwargs = batching.train_loader_kwargs(dataset, 4, bucketing=bucketing, num_buckets=3,
                                          seed=seed)
    if register_sampler:
        brain.train_sampler = batching.epoch_sampler(kwargs)
    try:
        brain.fit(counter, dataset, train_loader_kwargs=kwargs)
    except Interrupted:
        pass
    return brain.batches


@pytest.fixture(scope="module")
def toy_dataset():
    return manifest_dataset(iemocap_like_durations(n=40, seed=4), with_signal=True)


@pytest.mark.parametrize("bucketing", [True, False])
def test_each_epoch_gets_new_batches_once_the_sampler_is_registered(tmp_path, toy_dataset,
                                                                     bucketing):
    registered = train(tmp_path / "a", toy_dataset, epochs=3, bucketing=bucketing)
    assert len({frozenset(map(frozenset, registered[e])) for e in (1, 2, 3)}) == 3
    # What the module docstring warns about: a sampler the Brain does not know repeats the
    # first epoch's order (bucketed: its batches, in another order): set_epoch is never called.
    unregistered = train(tmp_path / "b", toy_dataset, epochs=2, register_sampler=False,
                         bucketing=bucketing)
    assert set(map(frozenset, unregistered[1])) == set(map(frozenset, unregistered[2]))


@pytest.mark.parametrize("bucketing", [True, False])
def test_the_run_seed_sets_the_batches(tmp_path, toy_dataset, bucketing):
    """Another seed, other batches; the same seed, the same ones (SpeechBrain's own shuffle=True
    sampler is seeded with a constant, whatever the run's seed)."""
    first = train(tmp_path / "a", toy_dataset, epochs=1, bucketing=bucketing, seed=11)
    again = train(tmp_path / "b", toy_dataset, epochs=1, bucketing=bucketing, seed=11)
    other = train(tmp_path / "c", toy_dataset, epochs=1, bucketing=bucketing, seed=12)
    assert first == again and first[1] != other[1]


@pytest.mark.parametrize("bucketing", [True, False])
def test_intra_epoch_resume_continues_the_same_batches(tmp_path, toy_dataset, bucketing):
    reference = train(tmp_path / "reference", toy_dataset, epochs=3, bucketing=bucketing)
    # Killed at step 5 of epoch 2: the last checkpoint was after step 4.
    killed = train(tmp_path / "run", toy_dataset, epochs=3, stop_at=(2, 5), bucketing=bucketing)
    assert killed[1] == reference[1] and killed[2] == reference[2][:5]
    resumed = train(tmp_path / "run", toy_dataset, epochs=3, bucketing=bucketing)
    assert sorted(resumed) == [2, 3]
    assert killed[2][:4] + resumed[2] == reference[2]
    assert resumed[3] == reference[3]


DDP_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import speechbrain as sb
    import torch
    sys.path.insert(0, {tests!r})
    from test_batching import iemocap_like_durations, manifest_dataset, RecordingBrain
    from m4ser_lobes.data import batching

    run_opts = {{"device": "cpu", "noprogressbar": True, "distributed_backend": "gloo"}}
    sb.utils.distributed.ddp_init_group(run_opts)
    dataset = manifest_dataset(iemocap_like_durations(n=60, seed=8), with_signal=True)
    counter = sb.utils.epoch_loop.EpochCounter(2)
    brain = RecordingBrain(modules={{"model": torch.nn.Linear(1, 1)}}, hparams={{}},
                           opt_class=lambda p: torch.optim.SGD(p, lr=0.01), run_opts=run_opts)
    kwargs = batching.train_loader_kwargs(dataset, 4, num_buckets=3, seed=11)
    brain.train_sampler = batching.epoch_sampler(kwargs)  # as the recipe does; DDP replaces it
    brain.fit(counter, dataset, train_loader_kwargs=kwargs)
    out = os.path.join({out!r}, "rank" + os.environ["RANK"] + ".json")
    with open(out, "w") as fout:
        json.dump({{"wrapper": type(brain.train_sampler).__name__, "batches": brain.batches}}, fout)
    torch.distributed.destroy_process_group()
    """
)


@pytest.mark.slow  # two torchrun processes: about 15 s on 2 cores
def test_ddp_deals_whole_batches_to_the_ranks(tmp_path):
    """torchrun, 2 CPU processes (gloo): each rank gets its share of the same epoch's batches."""
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT.format(tests=os.path.dirname(__file__), out=str(tmp_path)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(script)], env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert {r["wrapper"] for r in ranks} == {DistributedSamplerWrapper.__name__}
    durations = iemocap_like_durations(n=60, seed=8)
    sampler = batching.train_loader_kwargs(
        manifest_dataset(durations), 4, num_buckets=3, seed=11)["batch_sampler"]
    for epoch in ("1", "2"):
        expected = {frozenset(f"utt{i:05d}" for i in b) for b in epoch_batches(sampler, int(epoch))}
        got = [frozenset(b) for r in ranks for b in r["batches"][epoch]]
        per_rank = -(-len(expected) // 2)
        assert [len(r["batches"][epoch]) for r in ranks] == [per_rank, per_rank]
        assert set(got) == expected  # every batch, on one rank or the other
        assert len(got) - len(set(got)) == 2 * per_rank - len(expected)  # only padding repeats
