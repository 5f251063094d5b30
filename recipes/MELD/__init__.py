"""MELD recipe scripts (run them as files: ``python recipes/MELD/train.py ...``).

This file only gives the scripts distinct module names under pytest's doctest collection
(``MELD.train``, ``MELD.demo``), which would otherwise clash with ``recipes/IEMOCAP/train.py`` and
``demo.py``.
"""
