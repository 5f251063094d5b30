"""The paper's ablations: Table IV's rows as overrides of ``hparams/m4ser.yaml``, and the
paper's figures of each row (:data:`PAPER_TABLE_IV`, :func:`paper_result`).

``README.md``'s "Table IV ablations" table shows the same rows as commands
(``tests/unit/test_table4.py`` holds the two equal and trains every row one step).
"""

_BASELINE = {"use_aed": False, "use_aec": False, "use_gan": False, "use_lcl": False}
#: The paper's Table IV rows: label -> (``experiment_name``, overrides of ``hparams/m4ser.yaml``).
TABLE_IV = {
    "M4SER (full)": ("full", {}),
    "A(1) only speech": ("speech_only", {"modalities": "speech", **_BASELINE}),
    "A(2) only text": ("text_only", {"modalities": "text", **_BASELINE}),
    "A(3) speech & text + concat": ("concat", {"use_msr": False, "use_mir": False, **_BASELINE}),
    "B(1) w/o MSR": ("wo_msr", {"use_msr": False}),
    "B(2) w/o MIR": ("wo_mir", {"use_mir": False, "use_gan": False}),
    "B(3) w/o MSR & MIR": ("wo_msr_mir", {"use_msr": False, "use_mir": False, "use_gan": False}),
    "C(1) w/o AED": ("wo_aed", {"use_aed": False}),
    "C(2) w/o AEC": ("wo_aec", {"use_aec": False}),
    "C(3) w/o AED & AEC": ("wo_aed_aec", {"use_aed": False, "use_aec": False}),
    "D(1) w/o GAN": ("wo_gan", {"use_gan": False}),
    "D(2) w/o LCL": ("wo_lcl", {"use_lcl": False}),
    "D(3) w/o GAN & LCL": ("wo_gan_lcl", {"use_gan": False, "use_lcl": False}),
}

#: Rows beyond Table IV that the Table IV experiment can add: Table V's second row (the
#: concatenation baseline with MSR and MIR) and Table VI's human transcripts (AED/AEC need ASR text).
EXTRA_ROWS = {
    "+ MSR & MIR": ("msr_mir", dict(_BASELINE)),
    "gt_text (Table VI)": ("gt_text", {"text_source": "transcript", "use_aed": False,
                                       "use_aec": False}),
}
#: Every row the Table IV experiment knows, by experiment name.
ROWS_BY_NAME = {name: (label, overrides)
                for label, (name, overrides) in {**TABLE_IV, **EXTRA_ROWS}.items()}

#: The switches that make a row (``hparams/m4ser.yaml``'s values: the full model).
SWITCHES = {"modalities": "both", "use_msr": True, "use_mir": True, "use_aed": True,
            "use_aec": True, "use_gan": True, "use_lcl": True, "text_source": "hypothesis"}

#: The paper's figures of each row, as printed (percent): IEMOCAP WA, UA, MELD ACC, W-F1 ("-":
#: not reported). Table IV's 13 rows (the full row is also Tables II and III), Table V's second
#: row and Table VI's human transcripts.
_PAPER_ROWS = """
M4SER (full)                  79.2  80.1  66.5  66.0
A(1) only speech              68.9  69.8  51.7  45.1
A(2) only text                65.1  66.4  62.2  58.6
A(3) speech & text + concat   73.4  75.2  63.9  60.8
B(1) w/o MSR                  77.3  78.4  65.0  62.4
B(2) w/o MIR                  78.9  79.5  65.6  64.5
B(3) w/o MSR & MIR            76.5  77.9  64.8  61.7
C(1) w/o AED                  76.9  78.3  64.3  61.7
C(2) w/o AEC                  78.0  79.2  65.9  64.1
C(3) w/o AED & AEC            77.3  78.6  65.1  62.6
D(1) w/o GAN                  78.7  79.8  65.8  65.3
D(2) w/o LCL                  78.2  79.6  65.9  64.8
D(3) w/o GAN & LCL            78.1  79.3  65.5  64.1
+ MSR & MIR                   76.6  77.4  -     -
gt_text (Table VI)            78.4  79.9  -     -
"""
#: Row label -> (IEMOCAP WA, UA, MELD ACC, W-F1), None where the paper reports nothing.
PAPER_TABLE_IV = {label.strip(): tuple(None if n == "-" else float(n) for n in numbers)
                  for label, *numbers in (line.rsplit(maxsplit=4)
                                          for line in _PAPER_ROWS.strip().splitlines())}
#: The two reported metrics of each corpus (``test_metrics.json`` keys), in PAPER_TABLE_IV's order.
PAPER_METRICS = {"IEMOCAP": ("WA", "UA"), "MELD": ("ACC", "W-F1")}
#: Where the paper prints each row's figures.
_TABLES = {"M4SER (full)": {"IEMOCAP": "Tables II and IV", "MELD": "Tables III and IV"},
           "+ MSR & MIR": "Table V", "gt_text (Table VI)": "Table VI"}


def paper_figures(label, corpus):
    """``{metric: figure}`` of the paper for a row and corpus (``{}`` where it has none).

    Example
    -------
    >>> paper_figures("M4SER (full)", "MELD"), paper_figures("gt_text (Table VI)", "MELD")
    ({'ACC': 66.5, 'W-F1': 66.0}, {})
    """
    metrics = PAPER_METRICS[corpus]
    numbers = PAPER_TABLE_IV.get(label, (None,) * 4)[2 * (corpus == "MELD"):][:2]
    return {m: n for m, n in zip(metrics, numbers) if n is not None}


def paper_source(paper):
    """Where a :func:`paper_result` comes from, in words: ``"Tables II and IV, M4SER (full)"``;
    the row alone when it names its table (``"gt_text (Table VI)"``)."""
    return paper["row"] if paper["source"] in paper["row"] else f"{paper['source']}, {paper['row']}"


def row_of(values):
    """The label of the row whose switches ``values`` has, or None (another combination).

    Example
    -------
    >>> row_of({**SWITCHES, "use_gan": False}), row_of({**SWITCHES, "use_msr": False,
    ...                                                  "use_gan": False, "use_lcl": False})
    ('D(1) w/o GAN', None)
    """
    switches = {key: values.get(key) for key in SWITCHES}
    for label, overrides in ROWS_BY_NAME.values():
        if switches == {**SWITCHES, **overrides}:
            return label
    return None


def paper_result(values, corpus):
    """What the paper reports for the run's row on ``corpus``: ``{"row", "source", metrics...}``,
    or None (no such row, or no figure for the corpus). The IEMOCAP figures are means over the
    five folds.

    Example
    -------
    >>> paper_result(dict(SWITCHES), "MELD")
    {'row': 'M4SER (full)', 'source': 'Tables III and IV', 'ACC': 66.5, 'W-F1': 66.0}
    """
    label = row_of(values)
    figures = paper_figures(label, corpus) if label else {}
    if not figures:
        return None
    source = _TABLES.get(label, "Table IV")
    source = source[corpus] if isinstance(source, dict) else source
    return {"row": label, "source": source, **figures}
