"""The paper's ablations: Table IV's rows as overrides of ``hparams/m4ser.yaml``.

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
