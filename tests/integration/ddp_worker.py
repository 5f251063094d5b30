"""``recipes/IEMOCAP/train.py`` under torchrun, recording what each rank trained.

    python -m torch.distributed.run --standalone --nproc_per_node=2 \
        tests/integration/ddp_worker.py hparams/m4ser.yaml [train.py arguments] --distributed_backend=gloo

Runs ``run_argv(argv)`` unchanged (prepare on main, fit, test) and writes
``<output_folder>/rank<RANK>.pt`` once it has returned:

* ``module_types``: the class of every ``brain.modules`` entry after ``fit`` started (DDP or not);
* ``initial`` / ``final``: the unwrapped ``state_dict`` of every module right after
  ``on_fit_start`` (wrapping, optimisers, recovery) and right after ``fit`` (before ``evaluate``
  loads the best checkpoint, which would make the ranks equal whatever happened in training);
* ``trainable``: the names of the parameters with ``requires_grad`` per module;
* ``batch_ids``: the utterance ids this rank trained on; ``optimizer_step``;
  ``batches_per_epoch`` (the length of the rank's batch sampler);
* ``rank``, ``world_size``, ``distributed_launch`` and ``finished`` (written last).
"""

import os
import sys


def snapshot(brain):
    """Module name -> detached copy of the unwrapped module's ``state_dict``."""
    from m4ser_lobes.brain import unwrap

    return {
        name: {key: value.detach().clone() for key, value in unwrap(module).state_dict().items()}
        for name, module in brain.modules.items()
    }


def install_recorder(record):
    """Wrap ``M4SERBrain.on_fit_start``, ``fit_batch`` and ``fit`` to fill ``record``."""
    from m4ser_lobes.brain import M4SERBrain, unwrap

    on_fit_start, fit_batch, fit = M4SERBrain.on_fit_start, M4SERBrain.fit_batch, M4SERBrain.fit

    def recording_on_fit_start(self):
        on_fit_start(self)
        record["module_types"] = {name: type(m).__name__ for name, m in self.modules.items()}
        record["trainable"] = {
            name: [n for n, p in unwrap(m).named_parameters() if p.requires_grad]
            for name, m in self.modules.items()
        }
        record["initial"] = snapshot(self)
        # Batches this rank draws an epoch (the bucketed sampler, wrapped for DDP by SpeechBrain).
        record["batches_per_epoch"] = len(self.train_sampler) if self.train_sampler is not None else None

    def recording_fit_batch(self, batch):
        record["batch_ids"].extend(batch.id)
        return fit_batch(self, batch)

    def recording_fit(self, *args, **kwargs):
        result = fit(self, *args, **kwargs)
        record["final"] = snapshot(self)
        record["optimizer_step"] = self.optimizer_step
        return result

    record["batch_ids"] = []
    M4SERBrain.on_fit_start = recording_on_fit_start
    M4SERBrain.fit_batch = recording_fit_batch
    M4SERBrain.fit = recording_fit


def main(argv):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch
    import torch.distributed as dist
    from tiny_recipe import run_argv
    record = {}
    install_recorder(record)
    brain = run_argv(argv)
    rank = dist.get_rank() if dist.is_initialized() else 0
    record.update(
        rank=rank,
        world_size=dist.get_world_size() if dist.is_initialized() else 1,
        distributed_launch=brain.distributed_launch,
        finished=True,
    )
    path = os.path.join(brain.hparams.output_folder, f"rank{rank}.pt")
    torch.save(record, f"{path}.tmp")
    os.replace(f"{path}.tmp", path)
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1:])
