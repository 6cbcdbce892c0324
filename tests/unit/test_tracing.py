"""What keeps the Trainer's first epoch short: Keras's own code is traced as plain Python (AutoGraph converts
only ours), and the train step is traced once, not twice."""

import numpy as np
import tf_keras as keras
from tensorflow.python.autograph.core import config as autograph_config
from tensorflow.python.autograph.impl import conversion

from components.model import features as F
from components.model.model import INPUT_FEATURES, ModelParams, ModelShape, build_neumf
from components.model.ranking import SampledNegativesTrainer
from components.model.tracing import skip_converting_keras
from components.model.training import build_optimizer_slots

SHAPE = ModelShape(
    users=20, items=30, devices=3, categories=4, age_buckets=5, position_buckets=4, hour_buckets=4
)
PARAMS = ModelParams(
    gmf_dim=4, mlp_dim=4, side_dim=2, mlp_layers=(8, 4), l2=1e-5, learning_rate=0.01, steps_per_execution=1
)


def test_keras_internals_skip_autograph_and_our_code_does_not():
    skip_converting_keras()
    skip_converting_keras()  # idempotent: the rule is added once per process
    rules = [str(rule) for rule in autograph_config.CONVERSION_RULES]
    assert rules.count("DoNotConvert rule for tf_keras") == 1
    assert conversion.is_allowlisted(keras.layers.Dense.call)
    assert not conversion.is_allowlisted(SampledNegativesTrainer.objective_terms)


def _batch(rows: int, seed: int = 0) -> tuple[dict, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = {
        F.T_USER: SHAPE.users,
        F.T_ITEM: SHAPE.items,
        F.T_DEVICE: SHAPE.devices,
        F.T_CATEGORY: SHAPE.categories,
        F.T_AGE: SHAPE.age_buckets,
        F.T_POSITION: SHAPE.position_buckets,
        F.T_HOUR: SHAPE.hour_buckets,
    }
    x = {name: rng.integers(0, sizes[name], rows) for name in INPUT_FEATURES if name != F.T_PRICE}
    x[F.T_PRICE] = rng.normal(size=rows).astype(np.float32)
    return x, rng.integers(0, 2, rows).astype(np.float32)


def test_the_train_step_is_traced_once_when_the_slots_exist_before_fit():
    skip_converting_keras()
    x, y = _batch(300)
    model = build_neumf(SHAPE, PARAMS)
    build_optimizer_slots(model)
    model.fit(x, y, batch_size=64, epochs=2, verbose=0)
    assert model.train_function.experimental_get_tracing_count() == 1

    unprepared = build_neumf(SHAPE, PARAMS)
    unprepared.fit(x, y, batch_size=64, epochs=2, verbose=0)
    assert unprepared.train_function.experimental_get_tracing_count() == 2  # what build_optimizer_slots saves
