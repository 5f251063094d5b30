"""--save_embeddings=True: the test stage writes embeddings.npz (Figs. 9 and 10), row i equal to
utterance i's representation computed alone (padding never reaches a mean)."""

import numpy as np
import pytest
import speechbrain as sb
import torch

from m4ser_lobes.brain import unwrap
from m4ser_lobes.masks import mean_over_time


def test_embedding_rows_equal_each_utterance_alone(make_brain, tmp_path):
    torch.manual_seed(0)
    brain, loader = make_brain(tmp_path, batch_size=4, save_embeddings=True)
    brain.modules.eval()
    brain.on_stage_start(sb.Stage.TEST)
    batches = [b for _, b in zip(range(2), loader)]
    for batch in batches:
        brain.evaluate_batch(batch, sb.Stage.TEST)
    names = [brain.hparams.label_encoder.decode_ndim(i) for i in range(len(brain.hparams.label_encoder))]
    brain.write_embeddings(tmp_path / "embeddings.npz", names)
    saved = np.load(tmp_path / "embeddings.npz")
    assert set(saved.files) == {"ids", "labels", "pooled", "speech_specific", "text_specific",
                                "invariant"}
    assert list(saved["ids"]) == sorted(saved["ids"])
    model = unwrap(brain.modules.model)
    row = {u: i for i, u in enumerate(saved["ids"])}
    with torch.no_grad():
        for batch in batches:
            for j, utt in enumerate(batch.id):
                wav_len = int(round(float(batch.sig.lengths[j]) * batch.sig.data.shape[1]))
                ids_len = int(round(float(batch.input_ids.lengths[j]) * batch.input_ids.data.shape[1]))
                wav = batch.sig.data[j:j + 1, :wav_len]
                ids = batch.input_ids.data[j:j + 1, :ids_len]
                out = model(wav, torch.ones(1), ids, torch.zeros(1, ids_len, dtype=torch.bool), None)
                alone = {"pooled": out.pooled[0]}
                for name in ("speech_specific", "text_specific", "invariant"):
                    alone[name] = mean_over_time(getattr(out, name), out.speech_pad_mask)[0]
                for name, value in alone.items():
                    assert np.allclose(saved[name][row[utt]], value.numpy(), atol=1e-5), (utt, name)
                label = names[int(batch.emo_encoded.data[j])]
                assert saved["labels"][row[utt]] == label


def test_tsne_tool_is_deterministic_and_scores_each_panel(make_brain, tmp_path):
    """figures.py tsne on a real embeddings.npz: PNG + silhouette JSON, the same for a seed."""
    import json
    from pathlib import Path

    from m4ser_lobes.testing import load_script

    torch.manual_seed(0)
    brain, loader = make_brain(tmp_path, batch_size=8, save_embeddings=True)
    brain.modules.eval()
    brain.on_stage_start(sb.Stage.TEST)
    for batch in loader:
        brain.evaluate_batch(batch, sb.Stage.TEST)
    run = tmp_path / "run"
    run.mkdir()
    names = [brain.hparams.label_encoder.decode_ndim(i) for i in range(len(brain.hparams.label_encoder))]
    brain.write_embeddings(run / "embeddings.npz", names)
    figures = load_script(Path(__file__).resolve().parents[2] / "recipes" / "experiments" / "figures.py")
    outputs = []
    for by, name in (("emotion", "a"), ("emotion", "b"), ("modality", "c")):
        assert figures.main(["tsne", str(run), "--by", by, "--labels", "M4SER", "--out", str(tmp_path / f"{name}.png")]) == 0
        outputs.append(json.loads((tmp_path / f"{name}.json").read_text()))
        assert (tmp_path / f"{name}.png").stat().st_size > 0
    assert outputs[0] == outputs[1]  # deterministic for a seed
    assert -1 <= outputs[0]["M4SER"]["silhouette"] <= 1
    assert outputs[2]["M4SER"]["points"] == 3 * outputs[0]["M4SER"]["points"]
    # One label per panel, or one line before anything is read.
    with pytest.raises(SystemExit, match=r"--labels gives 2 names for 1 runs: give one per run"):
        figures.main(["tsne", str(run), "--labels", "a", "b", "--out", str(tmp_path / "x.png")])
    assert not (tmp_path / "x.png").exists()
