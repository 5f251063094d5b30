"""A rerun never reports another run's results; a configuration is refused before any work.

``recipes/IEMOCAP/train.py`` on the tiny generated corpus (tiny_recipe.py): a bad switch is
refused before anything is prepared or built; a run records ``configuration.json`` and
``fingerprint.json``; rerunning with a changed switch and the same ``experiment_name`` is
refused with the differences, the same command resumes, and ``--overwrite=True`` moves the old
run aside and trains the new configuration.
"""

import json

import pytest
from tiny_recipe import (
    checkpoints,
    run_argv,
    in_process_run,
    make_tiny_assets,
    output_folder,
    tiny_argv,
)

from m4ser_lobes.experiment.settings import ConfigError
from m4ser_lobes.utils import identity


@pytest.mark.parametrize("switches, message", [
    ({"modalities": "speech"}, r"use_gan=True needs the modality-invariant representation H_inv"),
    ({"use_gan": "no"}, r"use_gan='no' is not allowed: it should be a valid boolean"),
    ({"modalities": "text", "use_gan": False, "dropout": 1.5}, r"dropout=1.5 is not allowed"),
])
def test_bad_configuration_is_refused_before_any_work(tmp_path, switches, message):
    hypotheses = tmp_path / "hyps.json"
    hypotheses.write_text('{"hypotheses": {}}')
    # Nothing here could be prepared or loaded: refusing must not need any of it.
    assets = {"data_folder": tmp_path / "no_corpus", "hypotheses_file": hypotheses,
              "speech_encoder_source": tmp_path / "no_hubert",
              "text_encoder_source": tmp_path / "no_bert"}
    results = tmp_path / "results"
    with in_process_run(), pytest.raises(ConfigError, match=message) as error:
        run_argv(tiny_argv(assets, results, 1, **switches))
    assert "\n" not in str(error.value)
    assert not results.exists()  # no output folder, no prepared manifests


@pytest.mark.slow
def test_changed_switch_is_refused_same_resumes_overwrite_replaces(tmp_path):
    assets = make_tiny_assets(tmp_path / "assets")
    results = tmp_path / "results"
    folder = output_folder(results)
    argv = tiny_argv(assets, results, 1)

    with in_process_run():
        run_argv(argv)
    configuration = json.loads((folder / "configuration.json").read_text())
    assert configuration["modalities"] == "both" and configuration["gan"] is True
    assert configuration["aec"] == "selective" and configuration["text_encoder"]
    recorded = json.loads((folder / "identity.json").read_text())
    assert recorded["identity"]["use_lcl"] is True and recorded["identity"]["data"]
    assert configuration["settings_digest"] == identity.digest({k: v for k, v in recorded["identity"].items() if k not in ("data", "init_from")})
    finished = folder / "test_metrics.json"
    first_metrics = finished.stat().st_mtime_ns
    first_checkpoints = [c["path"] for c in checkpoints(folder / "save")]
    assert first_checkpoints

    # A changed switch, same experiment_name: refused, nothing touched.
    with in_process_run(), pytest.raises(ConfigError) as error:
        run_argv(tiny_argv(assets, results, 1, use_lcl=False))
    message = str(error.value)
    assert "use_lcl: True -> False" in message
    assert "--experiment_name=" in message and "--overwrite=True" in message
    assert finished.stat().st_mtime_ns == first_metrics

    # The same command: resumes (nothing left to train), tests the same checkpoint again.
    with in_process_run():
        brain = run_argv(argv)
    assert brain.hparams.epoch_counter.current == 1
    assert [c["path"] for c in checkpoints(folder / "save")] == first_checkpoints
    assert len(json.loads((folder / "history.json").read_text())) == 1
    del brain

    # --overwrite=True with another configuration (speech only): the old run is moved aside.
    speech_only = dict(modalities="speech", use_gan=False, use_aed=False, use_aec=False,
                       overwrite=True)
    with in_process_run():
        brain = run_argv(tiny_argv(assets, results, 1, **speech_only))
    model = brain.modules.model
    assert model.uses_speech and not model.uses_text
    assert brain.hparams.text_encoder is None  # never built
    del brain
    moved = [p for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.replaced-")]
    assert len(moved) == 1 and (moved[0] / "test_metrics.json").is_file()
    configuration = json.loads((folder / "configuration.json").read_text())
    assert configuration["modalities"] == "speech" and configuration["text_encoder"] is None
    assert json.loads((folder / "identity.json").read_text())["identity"]["modalities"] == "speech"
    assert [c["path"] for c in checkpoints(folder / "save")] != first_checkpoints


@pytest.mark.slow
def test_data_is_identity_failed_prep_records_nothing_and_epochs_continue(tmp_path):
    """Three holes of the old fingerprint: another corpus under the same name re-tested the old
    model; a run that failed in preparation was later refused as "a run with other settings";
    raising number_of_epochs was refused."""
    assets = make_tiny_assets(tmp_path / "assets")
    results = tmp_path / "results"
    folder = output_folder(results)
    # 1. Preparation fails (the counts of the full release are asserted): nothing recorded, and
    #    the fix the error suggests is accepted as a new run, not refused as another one.
    with in_process_run(), pytest.raises(Exception, match="expected"):
        run_argv(tiny_argv(assets, results, 1, expected_utterances=1085))
    assert not (folder / "save").exists() and not (folder / "test_metrics.json").exists()
    with in_process_run():
        run_argv(tiny_argv(assets, results, 1))
    metrics = (folder / "test_metrics.json").read_text()
    # 2. The same experiment on other data (human transcripts in place of the hypotheses after
    #    a corpus change is the same kind of change: other manifests): refused, results untouched.
    other = make_tiny_assets(tmp_path / "other", utterances_per_dialog=3)
    with in_process_run(), pytest.raises(ConfigError, match=r"data: \w+ -> \w+"):
        run_argv(tiny_argv({**assets, "data_folder": other["data_folder"],
                            "hypotheses_file": other["hypotheses_file"]}, results, 1))
    assert (folder / "test_metrics.json").read_text() == metrics
    # 3. A larger number_of_epochs continues the finished run (recorded in its history).
    with in_process_run():
        run_argv(tiny_argv(assets, results, 2))
    history = json.loads((folder / "identity.json").read_text())["history"]
    assert history and "number_of_epochs: 1 -> 2" in history[-1]["continued"]
    assert len(json.loads((folder / "history.json").read_text())) == 2
