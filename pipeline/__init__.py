"""recpipe orchestration: config, pipeline factory, runners, data tools and the CLI."""

import os

# TFT 1.16's transform layer is a tf_keras (Keras 2) model; TF 2.16's tf.keras is Keras 3 unless this is
# set before TensorFlow is first imported. Every entry point imports this package first.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
