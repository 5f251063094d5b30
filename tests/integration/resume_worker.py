"""``recipes/IEMOCAP/train.py`` that freezes in the middle of a chosen training batch.

    M4SER_FREEZE_AT=EPOCH:STEP M4SER_FREEZE_MARKER=path \
        python tests/integration/resume_worker.py hparams/m4ser.yaml [train.py arguments]

Used by ``test_resume.py``: at batch STEP of epoch EPOCH, after the discriminator phase and
before the model phase (inside ``compute_objectives``), the process writes the JSON marker
``{"epoch", "step", "optimizer_step"}`` and sleeps until the test SIGKILLs it. The kill point is
thus deterministic (not a race with the checkpoint writes) and falls in the middle of a batch
whose discriminator update must be discarded. Without ``M4SER_FREEZE_AT`` it is plain ``train.py``.
"""

import json
import os
import sys
import time

MAX_FREEZE_SECONDS = 600  # never outlive a crashed test run


def install_freeze(epoch, step, marker):
    """Patch ``M4SERBrain.compute_objectives`` to freeze at (epoch, step) of training."""
    import speechbrain as sb

    from m4ser_lobes.brain import M4SERBrain

    original = M4SERBrain.compute_objectives

    def compute_objectives(self, predictions, batch, stage):
        if (
            stage == sb.Stage.TRAIN
            and self.hparams.epoch_counter.current == epoch
            and self.step == step
        ):
            state = {"epoch": epoch, "step": self.step, "optimizer_step": self.optimizer_step}
            with open(f"{marker}.tmp", "w", encoding="utf-8") as fout:
                json.dump(state, fout)
            os.replace(f"{marker}.tmp", marker)
            time.sleep(MAX_FREEZE_SECONDS)
            os._exit(3)
        return original(self, predictions, batch, stage)

    M4SERBrain.compute_objectives = compute_objectives


def main(argv):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from tiny_recipe import run_argv
    freeze_at = os.environ.get("M4SER_FREEZE_AT")
    if freeze_at:
        epoch, step = (int(x) for x in freeze_at.split(":"))
        install_freeze(epoch, step, os.environ["M4SER_FREEZE_MARKER"])
    run_argv(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
