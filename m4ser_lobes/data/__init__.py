"""Audio reading, SpeechBrain data pipelines over the shared manifest schema, and batching."""
