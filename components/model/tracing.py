"""Keep AutoGraph out of Keras's own code when Keras traces the train, test and serving functions.

AutoGraph rewrites every Python function a tf.function calls unless its module is on TensorFlow's
do-not-convert list. That list names `keras` but not `tf_keras`, the Keras 2 package TFT 1.16 needs,
so each trace re-parsed and rewrote Keras internals: 12 of the first epoch's 16 s on make run's data
(docs/BENCHMARKS.md, the night-speed section). Keras still converts the `call` of our own layers,
and our train_step has no tensor-dependent Python control flow, so what is computed does not change.
"""

from __future__ import annotations

from absl import logging

try:  # TensorFlow's private AutoGraph config: guarded, so a TF upgrade that moves it costs speed only
    from tensorflow.python.autograph.core import config as autograph_config
except ImportError:  # pragma: no cover
    autograph_config = None

KERAS_PACKAGE = "tf_keras"


def skip_converting_keras() -> None:
    """Add tf_keras to AutoGraph's do-not-convert rules (once per process)."""
    if autograph_config is None:
        logging.warning("recpipe: AutoGraph's config moved; Keras internals will be converted (slower)")
        return
    rule = autograph_config.DoNotConvert(KERAS_PACKAGE)
    if not any(str(r) == str(rule) for r in autograph_config.CONVERSION_RULES):
        autograph_config.CONVERSION_RULES = (*autograph_config.CONVERSION_RULES, rule)
