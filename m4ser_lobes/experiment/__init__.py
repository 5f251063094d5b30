"""Running experiments: a run as a value (run, settings), ablations, cross-validation reports, studies."""
