"""Module code run by the TFX components: features, preprocessing_fn, NeuMF, run_fn, signatures, gates."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # see pipeline/__init__.py
