"""Custom TFX components (one file each), the model code Transform and the Trainer run (components/model/),
how training is launched (components/launch/), and the filesystem layer every root goes through (storage.py).

TFT 1.16's transform layer is a tf_keras (Keras 2) model, and TF 2.16's tf.keras is Keras 3 unless
TF_USE_LEGACY_KERAS is set before TensorFlow is first imported. This is the one place it is set: every
entry point (the CLI, the Kubeflow phases, training workers, tests, bench) imports this package before
TensorFlow, and child processes (Beam workers, training workers) inherit the environment.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
