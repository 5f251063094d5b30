"""Cross-corpus (Table VIII) and few-shot (Table IX) studies: labels, splits, draws, tables.

The paper trains on one corpus and tests on the other, in 4 classes (section V-G):

* **Shared classes** (:data:`LABEL_MAPS`, the one visible mapping): IEMOCAP's four classes as
  :mod:`m4ser_lobes.corpora.iemocap` writes them (``neu``, ``hap`` with ``exc`` merged,
  ``ang``, ``sad``) and MELD's ``neutral -> neu``, ``joy -> hap``, ``anger -> ang``,
  ``sadness -> sad``; MELD's ``surprise``, ``fear`` and ``disgust`` are dropped.
* **Target split** (:func:`stratified_split`): 30 % of the target corpus for validation, 70 % for
  the test, stratified by class and seeded.
* **Few-shot draws** (:func:`draw_shots`): ``k`` labelled utterances per class from the target
  validation part (5, 10, 20, 60 in Table IX), the rest of it for model selection; the 70 % test
  part stays fixed. The draws of one seed are nested: the 5 shots are among the 10, and so on.
* **Training settings** (:func:`table_i_settings`): each direction trains with its *source*
  corpus's column of Table I (IE→ME: IEMOCAP's, lr 1e-5, the model YAML's own values; ME→IE:
  MELD's, lr 1e-4, ``hparams/meld.yaml``); fine-tuning inherits its source's.
* **The runs** (:func:`study_corpus`): planned with IEMOCAP's data section (4 classes; the
  study writes the manifests), named after the direction (``IEMOCAP→MELD``: the logs never call
  a MELD test set "IEMOCAP") and logging the target's metrics.
* **Fine-tuning from a source run** (:mod:`m4ser_lobes.experiment.finetune`): the new run's
  save folder receives a copy of the source run's best checkpoint as its *starting* checkpoint
  (epoch counter 0, fresh optimiser state), scored on the run's validation part before training
  so that it is a selection candidate too; the digest of that checkpoint is the run's
  ``init_from``, part of its identity.
* **Tables** (:func:`cross_corpus_table`, :func:`few_shot_table`): shaped like the paper's, our
  numbers beside :data:`PAPER_TABLE8` / :data:`PAPER_TABLE9`, the encoders we used named in
  the rows (:func:`method_label`). A MELD target reports ACC (= WA) and weighted F1, an IEMOCAP
  target WA and UA (:data:`TARGET_METRICS`).

The commands are ``recipes/studies/cross_corpus.py`` and ``recipes/studies/few_shot.py``
(``recipes/studies/study_runner.py``: command line, data folders, runs).
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from pathlib import Path

from m4ser_lobes.experiment.settings import ConfigError

#: The four classes both corpora share, in table order.
SHARED_CLASSES = ("neu", "hap", "ang", "sad")

#: Corpus label (as its data prep writes it) -> shared class. Labels listed in
#: :data:`DROPPED_LABELS` are left out of the study; any other label is an error.
LABEL_MAPS = {
    # m4ser_lobes.corpora.iemocap.EMOTION_MAP already merged exc into hap and dropped the other codes.
    "iemocap": {"neu": "neu", "hap": "hap", "ang": "ang", "sad": "sad"},
    # m4ser_lobes.corpora.meld writes the CSV's lowercase names.
    "meld": {"neutral": "neu", "joy": "hap", "anger": "ang", "sadness": "sad"},
}
DROPPED_LABELS = {"iemocap": (), "meld": ("surprise", "fear", "disgust")}
CORPORA = tuple(LABEL_MAPS)

#: Direction id -> (source corpus, target corpus, the paper's column name).
DIRECTIONS = {
    "ie2me": ("iemocap", "meld", "IE→ME"),
    "me2ie": ("meld", "iemocap", "ME→IE"),
}

#: Target corpus -> (column name, key of ``test_metrics.json``): ACC is WA (overall accuracy).
TARGET_METRICS = {
    "meld": (("ACC", "WA"), ("W-F1", "W-F1")),
    "iemocap": (("WA", "WA"), ("UA", "UA")),
}

#: Corpus of the validation part -> the validation metric that selects the tested checkpoint
#: (``selection_metric`` of ``hparams/m4ser.yaml``): the paper's criterion for each corpus.
SELECTION_METRICS = {"meld": "W-F1", "iemocap": "UA"}

#: The switches of ``hparams/m4ser.yaml`` that a Table VIII row sets, one per M4SER part.
ROW_SWITCHES = ("use_msr", "use_mir", "use_aed", "use_aec", "use_gan", "use_lcl")


def _parts_on(*switches):
    """Every switch of :data:`ROW_SWITCHES` False except ``switches``."""
    return {name: name in switches for name in ROW_SWITCHES}


#: The Table VIII rows: name -> (the paper's label, the switches of ``hparams/m4ser.yaml``).
#: Baseline = concat fusion of the two encoders, every M4SER part off; each row adds parts.
ROWS = {
    "baseline": ("Baseline (HuBERT + BERT)", _parts_on()),
    "msr_mir": ("+ MSR & MIR", _parts_on("use_msr", "use_mir")),
    "gan_lcl": ("+ GAN & LCL", _parts_on("use_msr", "use_mir", "use_gan", "use_lcl")),
    "m4ser": ("+ AED & AEC (M4SER)", _parts_on(*ROW_SWITCHES)),
}

#: Table VIII of the paper (%): row -> direction -> column -> value. SAMS and MF-AED-AEC are the
#: paper's reimplementations of other systems (shown for reference, not run here).
PAPER_TABLE8 = {
    "SAMS": {"ie2me": {"ACC": 17.0, "W-F1": 11.6}, "me2ie": {"WA": 36.3, "UA": 33.9}},
    "MF-AED-AEC": {"ie2me": {"ACC": 56.0, "W-F1": 54.2}, "me2ie": {"WA": 62.5, "UA": 60.6}},
    "baseline": {"ie2me": {"ACC": 53.0, "W-F1": 52.4}, "me2ie": {"WA": 58.9, "UA": 57.4}},
    "msr_mir": {"ie2me": {"ACC": 54.7, "W-F1": 53.2}, "me2ie": {"WA": 60.8, "UA": 59.9}},
    "gan_lcl": {"ie2me": {"ACC": 55.6, "W-F1": 53.9}, "me2ie": {"WA": 61.9, "UA": 60.7}},
    "m4ser": {"ie2me": {"ACC": 57.3, "W-F1": 55.5}, "me2ie": {"WA": 64.0, "UA": 62.2}},
}
PAPER_ONLY_ROWS = ("SAMS", "MF-AED-AEC")

#: Table IX of the paper (%): method -> shots -> direction -> column -> value (M4SER = ``m4ser``).
PAPER_TABLE9 = {
    "SAMS": {
        5: {"ie2me": {"ACC": 51.6, "W-F1": 49.0}, "me2ie": {"WA": 39.0, "UA": 37.2}},
        10: {"ie2me": {"ACC": 52.5, "W-F1": 49.2}, "me2ie": {"WA": 38.2, "UA": 38.3}},
        20: {"ie2me": {"ACC": 52.3, "W-F1": 52.3}, "me2ie": {"WA": 39.9, "UA": 35.0}},
        60: {"ie2me": {"ACC": 59.9, "W-F1": 56.8}, "me2ie": {"WA": 44.4, "UA": 45.3}},
    },
    "MF-AED-AEC": {
        5: {"ie2me": {"ACC": 56.3, "W-F1": 54.8}, "me2ie": {"WA": 64.4, "UA": 63.3}},
        10: {"ie2me": {"ACC": 57.8, "W-F1": 55.7}, "me2ie": {"WA": 65.8, "UA": 65.6}},
        20: {"ie2me": {"ACC": 57.5, "W-F1": 56.7}, "me2ie": {"WA": 67.6, "UA": 66.6}},
        60: {"ie2me": {"ACC": 60.8, "W-F1": 60.3}, "me2ie": {"WA": 72.5, "UA": 73.7}},
    },
    "m4ser": {
        5: {"ie2me": {"ACC": 57.9, "W-F1": 56.0}, "me2ie": {"WA": 66.4, "UA": 64.4}},
        10: {"ie2me": {"ACC": 58.7, "W-F1": 58.0}, "me2ie": {"WA": 66.7, "UA": 67.7}},
        20: {"ie2me": {"ACC": 59.4, "W-F1": 58.8}, "me2ie": {"WA": 69.0, "UA": 68.7}},
        60: {"ie2me": {"ACC": 62.1, "W-F1": 61.5}, "me2ie": {"WA": 74.0, "UA": 75.9}},
    },
}
PAPER_SHOTS = (5, 10, 20, 60)
TARGET_VALID_RATIO = 0.3  # "30% of the target corpus is reserved for validation"


class StudyError(ConfigError):
    """A study setting or input that cannot work; the message (one line) says what to change."""


# ------------------------------------------------------------------------------ labels
def map_label(corpus, label):
    """The shared class of a corpus label, or None for a dropped label.

    Example
    -------
    >>> map_label("meld", "joy"), map_label("meld", "fear"), map_label("iemocap", "hap")
    ('hap', None, 'hap')
    >>> map_label("meld", "happy")
    Traceback (most recent call last):
    ...
    m4ser_lobes.experiment.studies.StudyError: meld label 'happy' is neither mapped (anger, joy, neutral, sadness) nor dropped (surprise, fear, disgust): the manifests were not written by the corpus's data prep
    """
    if corpus not in LABEL_MAPS:
        raise StudyError(f"unknown corpus {corpus!r}; choose among {CORPORA}")
    if label in LABEL_MAPS[corpus]:
        return LABEL_MAPS[corpus][label]
    if label in DROPPED_LABELS[corpus]:
        return None
    raise StudyError(
        f"{corpus} label {label!r} is neither mapped ({', '.join(sorted(LABEL_MAPS[corpus]))}) "
        f"nor dropped ({', '.join(DROPPED_LABELS[corpus]) or 'none'}): the manifests were not "
        "written by the corpus's data prep")


def map_entries(entries, corpus):
    """Manifest entries in the shared classes: ``emo`` mapped, dropped labels left out.

    The corpus label is kept as ``corpus_emo``; ids are prefixed by nothing (IEMOCAP and MELD
    ids never collide: ``Ses01F_impro01_F000`` vs ``train_dia0_utt0``).

    Example
    -------
    >>> mapped = map_entries({"a": {"emo": "joy"}, "b": {"emo": "disgust"}}, "meld")
    >>> mapped
    {'a': {'emo': 'hap', 'corpus_emo': 'joy'}}
    """
    mapped = {}
    for utt_id, entry in entries.items():
        shared = map_label(corpus, entry["emo"])
        if shared is not None:
            mapped[utt_id] = {**entry, "emo": shared, "corpus_emo": entry["emo"]}
    return mapped


# ------------------------------------------------------------------------------ splits
def _by_class(labels):
    classes = defaultdict(list)
    for utt_id in sorted(labels):
        classes[labels[utt_id]].append(utt_id)
    return dict(sorted(classes.items()))


def stratified_split(labels, ratio, seed):
    """Split ids into ``(held, rest)``: ``ratio`` of every class held out, seeded.

    Per class, ``round(ratio * n)`` ids are held (at least one, and at least one left), drawn by
    a shuffle seeded with ``(seed, class)``: the split of one class does not depend on the others.

    Arguments
    ---------
    labels : dict
        utt_id -> class.
    ratio : float
        Share held out, in (0, 1).
    seed : int

    Returns
    -------
    (list, list)
        Sorted ids held out and the rest.

    Example
    -------
    >>> labels = {f"u{i:02d}": "neu" if i < 10 else "ang" for i in range(20)}
    >>> held, rest = stratified_split(labels, 0.3, seed=1)
    >>> len(held), len(rest), sorted(Counter(labels[u] for u in held).items())
    (6, 14, [('ang', 3), ('neu', 3)])
    >>> held == stratified_split(labels, 0.3, seed=1)[0], held == stratified_split(labels, 0.3, 2)[0]
    (True, False)
    """
    if not 0 < ratio < 1:
        raise StudyError(f"split ratio must be in (0, 1), got {ratio}")
    held, rest = [], []
    for label, ids in _by_class(labels).items():
        if len(ids) < 2:
            raise StudyError(f"class {label!r} has {len(ids)} utterance(s): a stratified split "
                             "needs at least 2 per class (use more data)")
        order = list(ids)
        random.Random(f"{seed}:{label}").shuffle(order)
        n_held = min(max(1, round(ratio * len(ids))), len(ids) - 1)
        held += order[:n_held]
        rest += order[n_held:]
    return sorted(held), sorted(rest)


def draw_shots(labels, shots, seed, draw):
    """``shots`` ids per class for training, the rest for model selection (nested draws).

    Per class, the ids are shuffled once per ``(seed, draw, class)`` and the first ``shots``
    taken, so with the same seed and draw a smaller draw is part of a larger one.

    Arguments
    ---------
    labels : dict
        utt_id -> class of the target *validation* part.
    shots : int
        Labelled utterances per class.
    seed, draw : int
        The study seed and the draw number.

    Returns
    -------
    (list, list)
        Sorted training ids (``shots`` per class) and the sorted rest.

    Example
    -------
    >>> labels = {f"u{i:02d}": ("neu", "ang")[i % 2] for i in range(12)}
    >>> train, rest = draw_shots(labels, 2, seed=0, draw=0)
    >>> len(train), len(rest), sorted(Counter(labels[u] for u in train).values())
    (4, 8, [2, 2])
    >>> set(train) <= set(draw_shots(labels, 4, seed=0, draw=0)[0])
    True
    >>> draw_shots(labels, 6, seed=0, draw=0)
    Traceback (most recent call last):
    ...
    m4ser_lobes.experiment.studies.StudyError: 6 shots per class: class 'ang' has 6 validation utterances, and at least one must stay for model selection; use fewer shots (--shots) or a larger validation part
    """
    if not isinstance(shots, int) or isinstance(shots, bool) or shots < 1:
        raise StudyError(f"shots must be a positive integer, got {shots!r}")
    train, rest = [], []
    for label, ids in _by_class(labels).items():
        if len(ids) <= shots:
            raise StudyError(
                f"{shots} shots per class: class {label!r} has {len(ids)} validation "
                "utterances, and at least one must stay for model selection; use fewer shots "
                "(--shots) or a larger validation part")
        order = list(ids)
        random.Random(f"{seed}:{draw}:{label}").shuffle(order)
        train += order[:shots]
        rest += order[shots:]
    return sorted(train), sorted(rest)


def class_counts(entries):
    """Shared class -> count, in :data:`SHARED_CLASSES` order.

    Example
    -------
    >>> class_counts({"a": {"emo": "sad"}, "b": {"emo": "neu"}, "c": {"emo": "sad"}})
    {'neu': 1, 'hap': 0, 'ang': 0, 'sad': 2}
    """
    counts = Counter(e["emo"] for e in entries.values())
    return {c: counts.get(c, 0) for c in SHARED_CLASSES}


def check_all_classes(entries, what):
    """Refuse a set of entries that misses one of the shared classes (the model needs 4)."""
    missing = [c for c, n in class_counts(entries).items() if n == 0]
    if missing:
        raise StudyError(f"{what} has no utterance of class(es) {', '.join(missing)}; every "
                         f"split needs the four shared classes {SHARED_CLASSES}")


# ------------------------------------------------------------------------------ runs
def corpus_of(name):
    """The :class:`~m4ser_lobes.corpora.Corpus` of a study corpus (``"iemocap"``, ``"meld"``)."""
    from m4ser_lobes.corpora.iemocap import IEMOCAP
    from m4ser_lobes.corpora.meld import MELD

    return {"iemocap": IEMOCAP, "meld": MELD}[name]


def _plain(value):
    """A YAML scalar as the plain Python value (a tagged node, e.g. ``!ref``, as it is)."""
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return value


def table_i_settings(corpus, exclude=()):
    """The training settings of ``corpus``'s column of Table I, as overrides of the model YAML.

    A corpus's data file sets its column of Table I over the model YAML (``hparams/meld.yaml``:
    lr 1e-4 ...; ``hparams/m4ser.yaml`` holds IEMOCAP's): its keys that are model settings
    changing results (:class:`~m4ser_lobes.experiment.settings.ModelSettings` fields that are
    not bookkeeping, such as paths) are returned, but those of ``exclude`` (the keys a study run
    sets itself), as the file writes them (a ``!ref`` stays a reference).

    Example
    -------
    >>> study_keys = ("num_emotions", "selection_metric")
    >>> meld = table_i_settings("meld", exclude=study_keys)
    >>> meld["lr"], meld["batch_size"], table_i_settings("iemocap", exclude=study_keys)
    (0.0001, 16, {})
    """
    import ruamel.yaml

    from m4ser_lobes.experiment.settings import ModelSettings, fingerprint_keys

    settings = set(fingerprint_keys(ModelSettings))
    with open(corpus_of(corpus).data_file, encoding="utf-8") as fin:
        column = ruamel.yaml.YAML().load(fin) or {}  # round trip: HyperPyYAML's tags survive
    return {str(k): _plain(v) for k, v in column.items() if k in settings and k not in exclude}


def study_corpus(direction):
    """The corpus a run of ``direction`` is planned with.

    IEMOCAP's data section (4 classes; the study writes the manifests and sets
    ``skip_prep``), named after the direction so that the run's logs and ``configuration.json``
    say what it trained and tested on, and logging the target corpus's test metrics.

    Example
    -------
    >>> corpus = study_corpus("ie2me")
    >>> corpus.name, corpus.data_file.name, corpus.metrics == corpus_of("meld").metrics
    ('IEMOCAP→MELD', 'iemocap.yaml', True)
    """
    import dataclasses

    source, target, _ = DIRECTIONS[direction]
    return dataclasses.replace(
        corpus_of("iemocap"), name=f"{corpus_of(source).name}→{corpus_of(target).name}",
        metrics=corpus_of(target).metrics)


def encoders_label(configuration):
    """The encoders of a run (its ``configuration.json``), as the tables name them.

    Example
    -------
    >>> encoders_label({"speech_encoder": "facebook/hubert-large-ll60k",
    ...                 "text_encoder": "/tmp/assets/tiny-bert"})
    'hubert-large-ll60k + tiny-bert'
    >>> encoders_label({"speech_encoder": None, "text_encoder": "bert-base-uncased"})
    'bert-base-uncased'
    """
    names = [Path(str(configuration[key])).name for key in ("speech_encoder", "text_encoder")
             if configuration.get(key)]
    return " + ".join(names) or None


def method_label(row, encoders=None):
    """A row's label in our tables: the paper's, the baseline naming the encoders we used.

    Example
    -------
    >>> method_label("baseline", "tiny-hubert + tiny-bert"), method_label("baseline")
    ('Baseline (tiny-hubert + tiny-bert)', 'Baseline')
    >>> method_label("m4ser", "tiny-hubert + tiny-bert")
    '+ AED & AEC (M4SER)'
    """
    if row == "baseline":
        return f"Baseline ({encoders})" if encoders else "Baseline"
    return ROWS[row][0]


# ------------------------------------------------------------------------------ tables
def target_values(metrics, target):
    """The paper's columns for a target from a ``test_metrics.json`` dict.

    Example
    -------
    >>> target_values({"WA": 60.0, "UA": 55.0, "W-F1": 58.0}, "meld")
    {'ACC': 60.0, 'W-F1': 58.0}
    """
    return {column: metrics[key] for column, key in TARGET_METRICS[target]}


def _columns():
    return [(direction, column) for direction, (_, target, _) in DIRECTIONS.items()
            for column, _ in TARGET_METRICS[target]]


def _fmt(value, spread=None):
    if value is None:
        return "—"
    text = f"{value:.1f}"
    return text if spread is None else f"{text} ± {spread:.1f}"


def cross_corpus_table(results, rows=tuple(ROWS), encoders=None):
    """Table VIII from our runs: ``results[(row, direction)]`` = test metrics dict (or missing);
    ``encoders``: row -> the encoders its runs used (:func:`encoders_label`, :func:`method_label`).

    Returns
    -------
    dict
        ``columns`` (direction, metric), ``rows`` (each with ``ours`` and ``paper``: direction ->
        metric -> value or None), ``delta`` (M4SER - baseline, ours and paper, when both rows
        ran) and ``paper_only`` (SAMS, MF-AED-AEC).

    Example
    -------
    >>> table = cross_corpus_table({("baseline", "ie2me"): {"WA": 50.0, "UA": 40.0, "W-F1": 45.0}},
    ...                            rows=["baseline"])
    >>> table["rows"][0]["ours"]["ie2me"], table["rows"][0]["paper"]["ie2me"]
    ({'ACC': 50.0, 'W-F1': 45.0}, {'ACC': 53.0, 'W-F1': 52.4})
    >>> table["rows"][0]["ours"]["me2ie"]
    {'WA': None, 'UA': None}
    """
    table = {"title": "Table VIII: cross-corpus 4-class emotion recognition (%)",
             "columns": [list(c) for c in _columns()], "rows": [], "paper_only": []}
    for row in rows:
        ours = {}
        for direction, (_, target, _) in DIRECTIONS.items():
            metrics = results.get((row, direction))
            ours[direction] = (target_values(metrics, target) if metrics is not None else
                               {column: None for column, _ in TARGET_METRICS[target]})
        label = (encoders or {}).get(row)
        table["rows"].append({"row": row, "method": method_label(row, label), "encoders": label,
                              "ours": ours,
                              "paper": PAPER_TABLE8[row]})
    for name in PAPER_ONLY_ROWS:
        table["paper_only"].append({"method": name, "paper": PAPER_TABLE8[name]})
    by_row = {r["row"]: r for r in table["rows"]}
    if "baseline" in by_row and "m4ser" in by_row:
        delta = {"ours": {}, "paper": {}}
        for direction, column in _columns():
            for side in ("ours", "paper"):
                a = by_row["m4ser"][side][direction][column]
                b = by_row["baseline"][side][direction][column]
                delta[side].setdefault(direction, {})[column] = (
                    None if a is None or b is None else round(a - b, 4))
        table["delta"] = delta
    return table


def few_shot_table(results, rows=("m4ser",), shots=PAPER_SHOTS, encoders=None):
    """Table IX from our runs: ``results[(row, direction, shots)]`` = list of test metrics dicts
    (one per draw); ``encoders`` as :func:`cross_corpus_table`'s. Cells are mean and population
    standard deviation over the draws; the paper's rows that have no run of ours beside them
    (SAMS, MF-AED-AEC, other shot sizes) are listed in ``paper_only``.

    Example
    -------
    >>> runs = [{"WA": 50.0, "UA": 40.0, "W-F1": 45.0}, {"WA": 54.0, "UA": 44.0, "W-F1": 47.0}]
    >>> table = few_shot_table({("m4ser", "ie2me", 5): runs}, shots=[5])
    >>> cell = table["rows"][0]["ours"]["ie2me"]["ACC"]
    >>> cell["mean"], cell["std"], cell["draws"], table["rows"][0]["paper"]["ie2me"]["ACC"]
    (52.0, 2.0, 2, 57.9)
    >>> len(table["paper_only"])  # SAMS and MF-AED-AEC at 4 shot sizes, M4SER at 10, 20, 60
    11
    """
    from m4ser_lobes.experiment import report

    table = {"title": "Table IX: few-shot domain adaptation, cross-corpus 4 classes (%); "
                      "ours: mean ± std over draws",
             "columns": [list(c) for c in _columns()], "rows": [], "paper_only": []}
    for row in rows:
        for k in shots:
            ours = {}
            for direction, (_, target, _) in DIRECTIONS.items():
                runs = results.get((row, direction, k)) or []
                ours[direction] = {}
                for column, key in TARGET_METRICS[target]:
                    values = [float(m[key]) for m in runs]
                    mean, std = report.mean_std(values) if values else (None, None)
                    ours[direction][column] = {"mean": mean, "std": std, "draws": len(values),
                                               "values": values}
            paper = PAPER_TABLE9.get(row, {}).get(k)
            label = (encoders or {}).get(row)
            table["rows"].append({"row": row, "method": method_label(row, label),
                                  "encoders": label, "shots": k,
                                  "ours": ours, "paper": paper})
    for name in PAPER_ONLY_ROWS + ("m4ser",):
        for k in PAPER_SHOTS:
            if name in rows and k in shots:
                continue  # beside our numbers already
            method = ROWS[name][0] if name in ROWS else name
            table["paper_only"].append({"method": method, "shots": k,
                                        "paper": PAPER_TABLE9[name][k]})
    return table


def _header(extra):
    cells = ["Method"] + extra
    for direction, column in _columns():
        name = DIRECTIONS[direction][2]
        cells += [f"{name} {column}", f"{name} {column} (paper)"]
    return "| " + " | ".join(cells) + " |\n|" + "---|" * len(cells) + "\n"


def table_markdown(table):
    """Markdown of :func:`cross_corpus_table` or :func:`few_shot_table` (ours, then the paper).

    Example
    -------
    >>> print(table_markdown(cross_corpus_table({}, rows=["m4ser"])).splitlines()[4])
    | + AED & AEC (M4SER) | — | 57.3 | — | 55.5 | — | 64.0 | — | 62.2 |
    """
    few_shot = any("shots" in r for r in table["rows"] + table["paper_only"])
    lines = [f"## {table['title']}\n\n", _header(["# Shots"] if few_shot else [])]

    def cell(value):
        if isinstance(value, dict):
            return _fmt(value["mean"], value["std"] if value["draws"] > 1 else None) + (
                f" (n={value['draws']})" if value["draws"] else "")
        return _fmt(value)

    for r in table["rows"]:
        cells = [r["method"]] + ([str(r["shots"])] if few_shot else [])
        for direction, column in _columns():
            paper = (r["paper"] or {}).get(direction, {}).get(column)
            cells += [cell(r["ours"][direction][column]), _fmt(paper)]
        lines.append("| " + " | ".join(cells) + " |\n")
    if "delta" in table:
        cells = ["Δ Baseline"] + ([""] if few_shot else [])
        for direction, column in _columns():
            cells += [_fmt(table["delta"]["ours"][direction][column]),
                      _fmt(table["delta"]["paper"][direction][column])]
        lines.append("| " + " | ".join(cells) + " |\n")
    for r in table["paper_only"]:
        cells = [f"{r['method']} (paper only)"] + (
            [str(r["shots"])] if few_shot else [])
        for direction, column in _columns():
            cells += ["—", _fmt(r["paper"][direction][column])]
        lines.append("| " + " | ".join(cells) + " |\n")
    return "".join(lines)


def write_table(table, out_stem, notes=()):
    """Write ``<out_stem>.json`` and ``<out_stem>.md`` (atomic); returns the two paths."""
    from m4ser_lobes.utils.fileio import atomic_write_json, atomic_write_text

    out_stem = Path(out_stem)
    json_path, md_path = out_stem.with_suffix(".json"), out_stem.with_suffix(".md")
    atomic_write_json(json_path, {**table, "notes": list(notes)})
    text = table_markdown(table)
    if notes:
        text += "\n" + "".join(f"- {n}\n" for n in notes)
    atomic_write_text(md_path, text)
    return json_path, md_path


def read_json(path):
    """A JSON file's content."""
    with open(path, encoding="utf-8") as fin:
        return json.load(fin)
