"""Small shared helpers: atomic file writes, YAML values, tiny Hugging Face models for tests."""
