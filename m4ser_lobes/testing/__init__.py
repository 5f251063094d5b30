"""Test support shipped with the package (as numpy.testing and torch.testing are): tiny random
Hugging Face models saved to disk (:mod:`.models`), look-alike corpora in IEMOCAP's and MELD's
exact on-disk formats (:mod:`.mini_iemocap`, :mod:`.mini_meld`) and the demos' scaffolding
(:mod:`.demo`). Nothing here is used by training or inference."""
