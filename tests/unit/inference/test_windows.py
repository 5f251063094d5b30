"""The long-audio policy (``m4ser_lobes.inference.windows``): windows of the training crop's length.

On the trained tiny model: ``tests/integration/test_inference.py``.
"""

import pytest
import torch

from m4ser_lobes.inference.windows import check_window_settings, split_windows


@pytest.mark.parametrize("length", [1, 39, 40, 41, 43, 79, 80, 81, 119, 400, 1003])
@pytest.mark.parametrize("max_windows", [1, 2, 8])
def test_windows_have_the_training_length_and_reach_both_ends(length, max_windows):
    window = 40  # e.g. 4 s at 10 samples per second
    wav = torch.arange(float(length))
    windows = split_windows(wav, window, max_windows)
    if length <= window:
        assert torch.equal(windows, wav.unsqueeze(0))
        return
    count = min(-(-length // window), max_windows)
    assert windows.shape == (count, window), "every window is exactly the training crop"
    starts = windows[:, 0].long()
    assert starts[0] == 0, "the first window starts the file (alone: the Brain's crop)"
    if count == 1:
        return
    assert windows[-1, -1] == length - 1, "the last window ends the file"
    assert all(torch.equal(w, wav[s : s + window]) for w, s in zip(windows, starts.tolist()))
    gaps = starts.diff()
    assert bool((gaps > 0).all()) and int(gaps.max() - gaps.min()) <= 1, "evenly spaced"
    if count * window >= length:
        assert bool((gaps <= window).all()), "the windows cover the file"


@pytest.mark.parametrize(
    "settings, key",
    [((0, 8, 8), "window_seconds"), ((-1.0, 8, 8), "window_seconds"),
     ((float("nan"), 8, 8), "window_seconds"), ((20.0, 0, 8), "max_windows"),
     ((20.0, 2.5, 8), "max_windows"), ((20.0, 8, 0), "batch_size"), ((True, 8, 8), "window_seconds")],
)
def test_window_settings_that_classify_nothing_are_refused_naming_the_key(settings, key):
    with pytest.raises(ValueError) as err:
        check_window_settings(*settings, where="m/hyperparams.yaml")
    message = str(err.value)
    assert message.startswith(f"m/hyperparams.yaml: {key} is ") and "\n" not in message
