"""Training batches (random, or length-bucketed) and duration-sorted evaluation for SpeechBrain.

The paper trains on batches of 16 and says nothing of grouping them: ``hparams/m4ser.yaml``
draws random batches (``bucketing: False``), in an order set by the run's ``seed`` and the epoch.
With random batches every clip is padded to the longest clip of its batch: on IEMOCAP-like
durations (mean 4.5 s, a long tail) about 60 % of the audio the speech encoder reads is padding.
Grouping utterances of similar length into a batch (``bucketing: True``, SpeechBrain's
:class:`~speechbrain.dataio.sampler.DynamicBatchSampler`) brings that under 10 %: a speed switch
that also changes results (below).

The functions here build the keyword arguments of ``sb.Brain.fit(train_loader_kwargs=...,
valid_loader_kwargs=...)`` and ``sb.Brain.evaluate(test_loader_kwargs=...)``:

- :func:`train_loader_kwargs`: with ``bucketing`` on, a ``DynamicBatchSampler`` over duration
  buckets (edges from the training durations, :func:`bucket_boundaries`), the utterances shuffled
  with ``seed + epoch`` before they are dealt to their bucket, batches in random order. By default
  (``max_batch_seconds`` null) a batch holds ``batch_size`` utterances of one bucket, as Table I's
  "batch 16" (each bucket's last batch fewer): every utterance weighs as much in the loss as with
  random batches. With ``max_batch_seconds``, a batch holds up to that many seconds of audio
  instead (more short clips per batch, fewer long ones: steadier memory, but a batch's mean loss
  then weighs a long clip more than a short one). With ``bucketing`` off, random batches of
  ``batch_size`` (a ``ReproducibleRandomSampler`` seeded with ``seed + epoch``).
- :func:`epoch_sampler`: the sampler of those arguments that the Brain must know (below).
- :func:`eval_loader_kwargs`: valid/test in ``batch_size`` batches of utterances sorted by
  duration (longest first, so a memory error shows at the first batch). The same utterances are
  evaluated; only their order changes.
- :func:`padding_fraction`: the share of padding in the padded audio of an epoch.

Per-utterance outputs do not depend on a batch's composition once the speech encoder is
padding-invariant (``tests/unit/test_padding_invariance.py``): bucketing never changes what the
model computes for one utterance. It does change the training signal: it decides which
utterances share a gradient step, L_LCL draws its positives and negatives from the batch, and
every loss term is a batch mean; on IEMOCAP duration correlates with emotion, so bucketed batches
are not random draws of the training set. Hence random batches for Table I, and the batching mode
recorded beside every result (``configuration.json``, ``test_metrics.json``, the reports).

Epochs, resuming and DDP
------------------------
Either sampler's order is a function of ``(seed, epoch)`` once ``set_epoch(epoch)`` is called at
the start of each epoch. ``sb.Brain`` calls ``self.train_sampler.set_epoch(epoch)``, but on a
single process it does NOT register a ``sampler`` or ``batch_sampler`` of the loader arguments
as ``train_sampler`` (it registers only the one it makes itself for ``shuffle=True``, seeded
with a constant, not the run's seed, or under DDP); the recipe must do it::

    kwargs = train_loader_kwargs(datasets["train"], batch_size=16, seed=1986)
    brain.train_sampler = epoch_sampler(kwargs)  # set_epoch(epoch) before every epoch
    brain.fit(epoch_counter, datasets["train"], datasets["valid"], train_loader_kwargs=kwargs)

Without it every epoch repeats the first epoch's order (bucketed: the same batches in another
order), and a run resumed mid-epoch skips the wrong batches. With it, an intra-epoch checkpoint resumes exactly:
SpeechBrain's ``SaveableDataLoader`` saves how many batches of the epoch were yielded, and on
recovery fast-forwards the (batch) sampler by that many batches of the same ``(seed, epoch)``
order (``tests/unit/data/test_batching.py::test_intra_epoch_resume_continues_the_same_batches``).

Under DDP (``torchrun``), ``Brain.make_dataloader`` wraps the batch sampler in SpeechBrain's
``DistributedSamplerWrapper``, which forwards ``set_epoch`` and deals whole batches to the ranks
(each rank draws ``ceil(batches / world_size)`` of them; as with SpeechBrain's
``DistributedSampler``, a few batches are repeated to even out the last round). The number of
batches does not change from epoch to epoch (each bucket yields ``ceil(n / bucket batch size)``
batches whatever the order), as the wrapper requires
(``tests/unit/data/test_batching.py::test_ddp_deals_whole_batches_to_the_ranks``, two CPU ranks).
"""

import numpy as np
import torch
from speechbrain.dataio.sampler import DynamicBatchSampler, ReproducibleRandomSampler

#: Default number of duration buckets: about 6 % padding on IEMOCAP-like durations with batches
#: of 16 (``tests/unit/data/test_batching.py``); more buckets, less padding, but more partial batches
#: (one per bucket) and less mixing of lengths.
DEFAULT_NUM_BUCKETS = 20


def durations_of(dataset, max_seconds=None):
    """Duration in seconds of each item of a ``DynamicItemDataset``, in the dataset's order.

    Arguments
    ---------
    dataset : speechbrain.dataio.dataset.DynamicItemDataset
        Its manifest entries carry ``duration`` (seconds), as ``docs/CONTRACTS.md`` requires.
        A filtered or sorted view is read in its own order.
    max_seconds : float, optional
        Cap (the training pipeline crops longer clips to ``max_audio_seconds``).

    Returns
    -------
    list of float

    Example
    -------
    >>> from speechbrain.dataio.dataset import DynamicItemDataset
    >>> data = DynamicItemDataset({"a": {"duration": 2.5}, "b": {"duration": 30.0}})
    >>> durations_of(data), durations_of(data, max_seconds=20.0)
    ([2.5, 30.0], [2.5, 20.0])
    """
    durations = []
    for utt_id in dataset.data_ids:
        value = dataset.data[utt_id].get("duration")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(
                f"utterance {utt_id!r} has duration {value!r} in its manifest: every entry needs "
                "'duration' > 0 in seconds (docs/CONTRACTS.md); re-run the data preparation "
                "(--skip_prep=False) to rewrite the manifests, or turn bucketing off with "
                "--bucketing=False"
            )
        durations.append(float(value) if max_seconds is None else min(float(value), max_seconds))
    return durations


def bucket_boundaries(durations, num_buckets=DEFAULT_NUM_BUCKETS):
    """Upper edges of ``num_buckets`` duration buckets holding about equal seconds of audio each.

    Edge k (k = 1..num_buckets) is the shortest duration at which the utterances up to it hold
    ``k / num_buckets`` of the total audio; the last edge is the longest utterance, so none falls
    beyond. Equal edges are merged. Equal-audio buckets are narrower in the long tail than
    equal-count ones: the tail is where a wide bucket costs most padding (6 % against 10 % with 20
    buckets on IEMOCAP-like durations).

    Example
    -------
    >>> bucket_boundaries([1.0, 1.0, 2.0, 4.0], num_buckets=2)  # 8 s of audio: 4 s up to 2.0
    [2.0, 4.0]
    >>> bucket_boundaries([3.0] * 10, num_buckets=4)
    [3.0]
    """
    if not isinstance(num_buckets, int) or isinstance(num_buckets, bool) or num_buckets < 1:
        raise ValueError(f"num_buckets must be an integer >= 1, got {num_buckets!r}")
    ordered = np.sort(np.asarray(durations, dtype=float))
    if ordered.size == 0:
        raise ValueError("bucket_boundaries needs at least one duration")
    share = np.cumsum(ordered) / ordered.sum()
    targets = np.arange(1, num_buckets + 1) / num_buckets
    edges = ordered[np.minimum(np.searchsorted(share, targets - 1e-12), ordered.size - 1)]
    edges[-1] = ordered[-1]
    return [float(x) for x in np.unique(edges)]


def padding_fraction(durations, batches):
    """Share of padding in the padded audio of an epoch.

    Each batch is padded to its longest item: it holds ``len(batch) * max(duration)`` of audio,
    ``sum(duration)`` of it real. The fraction is (padded - real) / padded, summed over batches.

    Arguments
    ---------
    durations : sequence of float
        Duration (seconds or samples) of each dataset index.
    batches : iterable of sequences of int
        Dataset indices per batch (what a batch sampler yields).

    Example
    -------
    >>> padding_fraction([1.0, 3.0, 2.0, 2.0], [[0, 1], [2, 3]])  # (6 + 4 - 8) / (6 + 4)
    0.2
    """
    durations = np.asarray(durations, dtype=float)
    padded = real = 0.0
    for batch in batches:
        lengths = durations[np.asarray(batch, dtype=int)]
        if lengths.size == 0:
            continue
        padded += lengths.size * float(lengths.max())
        real += float(lengths.sum())
    if padded == 0.0:
        raise ValueError("padding_fraction needs at least one non-empty batch")
    return (padded - real) / padded


def train_loader_kwargs(
    dataset,
    batch_size,
    bucketing=True,
    max_batch_seconds=None,
    num_buckets=DEFAULT_NUM_BUCKETS,
    seed=0,
    num_workers=0,
    max_audio_seconds=None,
):
    """Keyword arguments for ``sb.Brain.fit(train_loader_kwargs=...)``.

    Arguments
    ---------
    dataset : speechbrain.dataio.dataset.DynamicItemDataset
        The training set; its manifest has ``duration`` (seconds).
    batch_size : int
        Utterances per batch (with bucketing: per batch of a bucket, its last batch fewer).
    bucketing : bool
        True: a ``DynamicBatchSampler`` (``batch_sampler``) over duration buckets, utterances
        shuffled with ``seed + epoch``, batches in random order. False: random batches of
        ``batch_size`` (a ``ReproducibleRandomSampler`` as ``sampler``, seeded with
        ``seed + epoch``), as the paper trains.
    max_batch_seconds : float, optional
        None: ``batch_size`` utterances a batch. A number: seconds of audio a batch (the sum of
        its durations) instead of a count; an utterance longer than this forms a batch alone.
    num_buckets : int
        Duration buckets (:func:`bucket_boundaries`); at most ``len(dataset) // batch_size`` are
        used, so that a bucket holds a batch's worth of utterances on average (a small training
        set would otherwise make one small batch per bucket).
    seed : int
        Base seed of the order; epoch ``e`` uses ``seed + e``.
    num_workers : int
        DataLoader workers.
    max_audio_seconds : float, optional
        The training crop (``hparams: max_audio_seconds``): a longer clip counts as this long.

    Returns
    -------
    dict
        ``{"batch_sampler", "num_workers"}`` with bucketing, else
        ``{"batch_size", "sampler", "num_workers"}``. Register the sampler with the Brain
        (``brain.train_sampler = epoch_sampler(kwargs)``) so each epoch gets its own order.

    Example
    -------
    >>> from speechbrain.dataio.dataset import DynamicItemDataset
    >>> data = DynamicItemDataset({f"u{i}": {"duration": 1.0 + i % 4} for i in range(64)})
    >>> kwargs = train_loader_kwargs(data, batch_size=8, num_buckets=4, seed=3)
    >>> sorted(kwargs), sorted(len(batch) for batch in kwargs["batch_sampler"])
    (['batch_sampler', 'num_workers'], [8, 8, 8, 8, 8, 8, 8, 8])
    >>> sorted(i for batch in kwargs["batch_sampler"] for i in batch) == list(range(64))
    True
    >>> by_seconds = train_loader_kwargs(data, 8, max_batch_seconds=12.0, num_buckets=4)
    >>> seconds = [sum(1.0 + i % 4 for i in batch) for batch in by_seconds["batch_sampler"]]
    >>> max(seconds), len(seconds)  # 6 clips of <= 2 s, 4 of 3 s, 3 of 4 s a batch
    (12.0, 16)
    >>> random = train_loader_kwargs(data, batch_size=8, bucketing=False, seed=3)
    >>> sorted(random), random["batch_size"], sorted(random["sampler"]) == list(range(64))
    (['batch_size', 'num_workers', 'sampler'], 8, True)
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if not bucketing:
        sampler = ReproducibleRandomSampler(dataset, seed=int(seed))
        return {"batch_size": batch_size, "sampler": sampler, "num_workers": num_workers}
    if not isinstance(num_buckets, int) or isinstance(num_buckets, bool) or num_buckets < 1:
        raise ValueError(f"num_buckets must be an integer >= 1, got {num_buckets!r}")
    if len(dataset) == 0:
        raise ValueError("the training set is empty: check the train manifest")
    durations = durations_of(dataset, max_audio_seconds)
    num_buckets = min(num_buckets, max(1, len(durations) // batch_size))
    if max_batch_seconds is None:
        # A count, not seconds: the length limit never binds (batch_size longest clips fit).
        max_batch_length, max_batch_ex = batch_size * max(durations), batch_size
    elif isinstance(max_batch_seconds, bool) or not (
        isinstance(max_batch_seconds, (int, float)) and max_batch_seconds > 0
    ):
        raise ValueError(
            f"max_batch_seconds must be > 0 (seconds of audio a batch), or null for batches of "
            f"batch_size utterances, got {max_batch_seconds!r}"
        )
    else:
        max_batch_length, max_batch_ex = float(max_batch_seconds), None
    sampler = DynamicBatchSampler(
        dataset,
        max_batch_length=max_batch_length,
        bucket_boundaries=bucket_boundaries(durations, num_buckets),
        lengths_list=durations,
        shuffle=True,
        batch_ordering="random",
        max_batch_ex=max_batch_ex,
        seed=int(seed),
    )
    return {"batch_sampler": sampler, "num_workers": num_workers}


def epoch_sampler(loader_kwargs):
    """The sampler of :func:`train_loader_kwargs` the Brain must set to each epoch (its
    ``train_sampler``): the ``batch_sampler`` (bucketing) or the ``sampler`` (random batches).

    Example
    -------
    >>> from speechbrain.dataio.dataset import DynamicItemDataset
    >>> data = DynamicItemDataset({"a": {"duration": 1.0}, "b": {"duration": 2.0}})
    >>> kwargs = train_loader_kwargs(data, batch_size=2, bucketing=False)
    >>> epoch_sampler(kwargs) is kwargs["sampler"]
    True
    """
    return loader_kwargs.get("batch_sampler", loader_kwargs.get("sampler"))


class DurationSortedSampler(torch.utils.data.Sampler):
    """Dataset indices sorted by duration (ties in dataset order); the same order every epoch.

    Arguments
    ---------
    durations : sequence of float
        Duration of each dataset index (:func:`durations_of`).
    descending : bool
        Longest first (a memory error shows at the first batch).

    Example
    -------
    >>> list(DurationSortedSampler([2.0, 5.0, 1.0, 5.0]))
    [1, 3, 0, 2]
    >>> list(DurationSortedSampler([2.0, 5.0, 1.0], descending=False))
    [2, 0, 1]
    """

    def __init__(self, durations, descending=True):
        keys = np.asarray(list(durations), dtype=float)
        # A stable sort: equal durations keep the dataset order, whichever direction.
        self.order = np.argsort(-keys if descending else keys, kind="stable").tolist()

    def __iter__(self):
        return iter(self.order)

    def __len__(self):
        return len(self.order)


def eval_loader_kwargs(dataset, batch_size, sort=True, num_workers=0):
    """Keyword arguments for valid/test loaders (``valid_loader_kwargs``, ``test_loader_kwargs``).

    With ``sort``, batches of ``batch_size`` utterances in descending duration order (little
    padding; every utterance evaluated once, whole); else the manifest order. Build one per
    dataset: the sampler is tied to it.

    Example
    -------
    >>> from speechbrain.dataio.dataset import DynamicItemDataset
    >>> data = DynamicItemDataset({"a": {"duration": 2.0}, "b": {"duration": 9.0}})
    >>> kwargs = eval_loader_kwargs(data, batch_size=16)
    >>> list(kwargs["sampler"]), kwargs["batch_size"]
    ([1, 0], 16)
    >>> eval_loader_kwargs(data, batch_size=16, sort=False)
    {'batch_size': 16, 'shuffle': False, 'num_workers': 0}
    """
    if not sort:
        return {"batch_size": batch_size, "shuffle": False, "num_workers": num_workers}
    return {
        "batch_size": batch_size,
        "sampler": DurationSortedSampler(durations_of(dataset)),
        "num_workers": num_workers,
    }
