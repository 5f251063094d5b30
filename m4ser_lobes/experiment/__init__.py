"""Running experiments: configuration rules and run fingerprints, metrics, cross-validation reports."""
