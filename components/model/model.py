"""NeuMF (He et al., 2017): a GMF tower and an MLP tower over user/item embeddings, fused by a sigmoid
layer. Side features (device, category, price, age, position, hour) join the MLP tower, where they can
interact with the user and item. Plain Keras, no I/O: the trainer feeds it transformed features.
"""

from __future__ import annotations

from dataclasses import dataclass

import tf_keras as keras

from components.model import features as F


@dataclass(frozen=True)
class ModelShape:
    """Vocabulary sizes (including OOV buckets) the embedding tables must cover."""

    users: int
    items: int
    devices: int
    categories: int
    age_buckets: int
    position_buckets: int
    hour_buckets: int


@dataclass(frozen=True)
class ModelParams:
    """Sizes, regularisation and how Keras runs the steps; no defaults here: they live in the config
    (pipeline/config.py: TrainerConfig)."""

    gmf_dim: int
    mlp_dim: int
    side_dim: int
    mlp_layers: tuple[int, ...]
    l2: float
    learning_rate: float
    steps_per_execution: int


INPUT_FEATURES = (F.T_USER, F.T_ITEM, F.T_DEVICE, F.T_CATEGORY, F.T_PRICE, F.T_AGE, F.T_POSITION, F.T_HOUR)

# Order of the MLP tower's concatenated inputs; components/model/recommend.py splits the first layer's kernel
# by it, so the two must never disagree.
LOGIT_LAYER = "click_probability"

MLP_INPUT_ORDER = ("mlp_user", "mlp_item", "device", "category", "age", "position", "hour", "price")


def build_neumf(shape: ModelShape, params: ModelParams) -> keras.Model:
    """Build and compile NeuMF. Inputs are named by the transformed feature names, each a [batch] tensor."""
    ints = {
        name: keras.Input(shape=(), dtype="int64", name=name) for name in INPUT_FEATURES if name != F.T_PRICE
    }
    price = keras.Input(shape=(), dtype="float32", name=F.T_PRICE)
    reg = keras.regularizers.l2(params.l2)

    def embed(name: str, vocab: int, dim: int, x) -> keras.layers.Layer:
        return keras.layers.Embedding(vocab, dim, embeddings_regularizer=reg, name=f"{name}_embedding")(x)

    # GMF: element-wise product of user and item embeddings (a generalised matrix factorisation).
    gmf = keras.layers.Multiply(name="gmf")(
        [
            embed("gmf_user", shape.users, params.gmf_dim, ints[F.T_USER]),
            embed("gmf_item", shape.items, params.gmf_dim, ints[F.T_ITEM]),
        ]
    )

    # MLP: concatenated user, item and side-feature embeddings through a tower of ReLU layers.
    mlp_inputs = {
        "mlp_user": embed("mlp_user", shape.users, params.mlp_dim, ints[F.T_USER]),
        "mlp_item": embed("mlp_item", shape.items, params.mlp_dim, ints[F.T_ITEM]),
        "device": embed("device", shape.devices, params.side_dim, ints[F.T_DEVICE]),
        "category": embed("category", shape.categories, params.side_dim, ints[F.T_CATEGORY]),
        "age": embed("age", shape.age_buckets, params.side_dim, ints[F.T_AGE]),
        "position": embed("position", shape.position_buckets, params.side_dim, ints[F.T_POSITION]),
        "hour": embed("hour", shape.hour_buckets, params.side_dim, ints[F.T_HOUR]),
        "price": keras.layers.Reshape((1,), name="price")(price),
    }
    mlp = keras.layers.Concatenate(name="mlp_input")([mlp_inputs[name] for name in MLP_INPUT_ORDER])
    for i, width in enumerate(params.mlp_layers):
        mlp = keras.layers.Dense(width, activation="relu", name=f"mlp_{i}")(mlp)

    fused = keras.layers.Concatenate(name="neumf")([gmf, mlp])
    # The logit and its sigmoid are separate layers so a ranking loss can train on the logit (LOGIT_LAYER
    # keeps the name that trained models, warm-start bundles and components/model/recommend.py use).
    logit = keras.layers.Dense(1, name=LOGIT_LAYER)(fused)
    prob = keras.layers.Activation("sigmoid", name="probability")(logit)
    model = keras.Model(inputs={**ints, F.T_PRICE: price}, outputs=prob, name="neumf")
    model.compile(
        optimizer=keras.optimizers.Adam(params.learning_rate),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.AUC(name="auc")],
        steps_per_execution=params.steps_per_execution,
    )
    return model
