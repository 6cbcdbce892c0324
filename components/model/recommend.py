"""In-graph top-K over the whole item catalogue, so TF Serving alone answers "guess you like".

NeuMF scores a (user, item) pair as sigmoid(w_g . (u_g * v_g) + w_h . MLP([u_m, v_m, side...])). For one
user against every item, everything that depends only on the item is computed once at export:
- the item half of the first MLP layer, v_m W_item + category_emb W_cat + price w_price (a [V, h1] matrix);
- the GMF term collapses to E_gmf_item @ (u_g * w_g), a matrix-vector product.
A request then costs one [V, h1] add + ReLU and the small remaining layers, not V full forward passes.

Unknown users (OOV index) are scored with the mean embedding of the known users, which ranks items the
way the model would for a typical user, instead of using an untrained OOV row.

What the feed ranks by is trainer.recommend_by: the click probability, or the expected clicks, that
probability times the item's share of the logged impressions. A click log's clicks are shaped by what
the logging policy showed: a model of P(click | shown) alone ranks the whole catalogue far below the
most-popular list on the next day's clicks (docs/BENCHMARKS.md), the exposure-weighted feed above it.
`score_items` (the ranking call for items a caller already chose) always answers the click probability.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from components.model import features as F
from components.model.model import LOGIT_LAYER, MLP_INPUT_ORDER

CHUNK_ROWS = 8192  # items scored per block in `recommend` (see _scores)
# A `recommend` answer holds k entries per user; when exclusions leave fewer than k items, the rest are this
# padding (an empty id is never a catalogue item: pre-flight refuses empty ids). Clients drop them
# (pipeline/serving_client.py: recommend).
PAD_ITEM_ID = ""
PAD_SCORE = -1.0


class Recommender(tf.Module):
    """Precomputed item-side tensors plus references to the trained user-side weights."""

    def __init__(
        self,
        model,
        tft_layer,
        item_ids: list[bytes],
        item_category: np.ndarray,
        item_price: np.ndarray,
        known_users: int,
        item_exposure: np.ndarray | None = None,
    ):
        super().__init__(name="recommender")
        self._tft_layer = tft_layer
        emb = {
            name: model.get_layer(f"{name}_embedding").embeddings
            for name in (
                "gmf_user",
                "gmf_item",
                "mlp_user",
                "mlp_item",
                "device",
                "category",
                "age",
                "position",
                "hour",
            )
        }
        first = model.get_layer("mlp_0")
        out = model.get_layer(LOGIT_LAYER)
        gmf_dim = emb["gmf_item"].shape[1]
        self._w_gmf, self._w_mlp = out.kernel[:gmf_dim, 0], out.kernel[gmf_dim:, 0]
        self._out_bias = out.bias[0]
        self._deeper = [model.get_layer(f"mlp_{i}") for i in range(1, _count_mlp_layers(model))]
        self._emb = emb
        # Row ranges of the first MLP kernel, in the order the model concatenates its inputs.
        widths = {n: (1 if n == "price" else emb[n].shape[1]) for n in MLP_INPUT_ORDER}
        starts = np.cumsum([0] + [widths[n] for n in MLP_INPUT_ORDER])
        self._rows = {n: (int(starts[i]), int(starts[i + 1])) for i, n in enumerate(MLP_INPUT_ORDER)}
        self._kernel, self._bias = first.kernel, first.bias

        n_items = len(item_ids)
        self.n_items = n_items
        self.item_ids = tf.Variable(tf.constant(item_ids, tf.string), trainable=False, name="item_ids")
        item_part = (
            tf.matmul(emb["mlp_item"][:n_items], self._rows_of("mlp_item"))
            + tf.matmul(tf.gather(emb["category"], item_category), self._rows_of("category"))
            + tf.constant(item_price, tf.float32)[:, None] * self._rows_of("price")
        )
        self.item_part = tf.Variable(item_part, trainable=False, name="item_part")
        self.gmf_items = tf.Variable(emb["gmf_item"][:n_items], trainable=False, name="gmf_items")
        self.mean_gmf_user = tf.Variable(tf.reduce_mean(emb["gmf_user"][:known_users], 0), trainable=False)
        self.mean_mlp_user = tf.Variable(tf.reduce_mean(emb["mlp_user"][:known_users], 0), trainable=False)
        self.known_users = known_users
        # With exposure: the feed ranks by expected clicks, P(click | shown) x the item's share of the
        # logged impressions (+1 each, so an item never shown still ranks by its click probability).
        share = (
            np.ones(n_items)
            if item_exposure is None
            else (item_exposure + 1.0) / (item_exposure.sum() + n_items)
        )
        self.item_share = tf.Variable(tf.constant(share, tf.float32), trainable=False, name="item_share")
        self.item_index = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(item_ids, tf.string), tf.range(n_items, dtype=tf.int64)
            ),
            default_value=-1,
        )

    def _rows_of(self, name: str) -> tf.Tensor:
        start, end = self._rows[name]
        return self._kernel[start:end]

    def _user_side(self, user_id: tf.Tensor, device: tf.Tensor, event_ts: tf.Tensor):
        """[B] raw context -> (GMF user vector [B, dg], user half of the first MLP layer [B, h1])."""
        batch = tf.shape(user_id)[0]
        column = lambda t: tf.reshape(t, [-1, 1])  # noqa: E731
        raw = {
            F.USER_ID: column(user_id),
            F.ITEM_ID: column(tf.fill([batch], "")),
            F.EVENT_TS: column(event_ts),
            F.POSITION: tf.zeros([batch, 1], tf.int64),
            F.DEVICE: column(device),
            F.ITEM_CATEGORY: column(tf.fill([batch], "")),
            F.ITEM_PRICE: tf.zeros([batch, 1], tf.float32),
            F.USER_AGE: tf.SparseTensor(
                tf.zeros([0, 2], tf.int64),
                tf.zeros([0], tf.int64),
                tf.stack([tf.cast(batch, tf.int64), tf.constant(1, tf.int64)]),
            ),
        }
        t = self._tft_layer(raw)
        user = t[F.T_USER]
        known = (user < self.known_users)[:, None]
        gmf_u = tf.where(known, tf.gather(self._emb["gmf_user"], user), self.mean_gmf_user[None])
        mlp_u = tf.where(known, tf.gather(self._emb["mlp_user"], user), self.mean_mlp_user[None])
        user_part = tf.matmul(mlp_u, self._rows_of("mlp_user")) + self._bias
        # Recommendations are for the top slot; age is not a request input, so it is the "unknown" bucket.
        for name, feature in (
            ("device", F.T_DEVICE),
            ("age", F.T_AGE),
            ("position", F.T_POSITION),
            ("hour", F.T_HOUR),
        ):
            user_part += tf.matmul(tf.gather(self._emb[name], t[feature]), self._rows_of(name))
        return gmf_u, user_part

    def _mlp_logits(self, user_part: tf.Tensor, item_part: tf.Tensor) -> tf.Tensor:
        """The MLP tower's share of the logit for [B] users x [N] items, as plain 2D matmuls."""
        users, items = tf.shape(user_part)[0], tf.shape(item_part)[0]
        h = tf.reshape(tf.nn.relu(user_part[:, None, :] + item_part[None, :, :]), [-1, item_part.shape[1]])
        for layer in self._deeper:
            h = layer.activation(tf.matmul(h, layer.kernel) + layer.bias)
        return tf.reshape(tf.linalg.matvec(h, self._w_mlp), [users, items])

    def _scores(self, gmf_u, user_part, item_part, gmf_items, chunk_rows: int | None = None) -> tf.Tensor:
        """[B] users x [N] items -> click probabilities [B, N].

        With chunk_rows, the catalogue is scored in blocks whose activations stay in the CPU cache:
        measured here at 100k items, about a third less time than one [N, h1] pass through memory.
        """
        logits = tf.matmul(gmf_u * self._w_gmf[None], gmf_items, transpose_b=True) + self._out_bias
        if chunk_rows is None or item_part.shape[0] is None:
            return tf.sigmoid(logits + self._mlp_logits(user_part, item_part))
        blocks = [
            self._mlp_logits(user_part, item_part[start : start + chunk_rows])
            for start in range(0, item_part.shape[0], chunk_rows)
        ]
        return tf.sigmoid(logits + tf.concat(blocks, axis=1))

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="user_id"),
            tf.TensorSpec([None], tf.string, name="device"),
            tf.TensorSpec([None], tf.int64, name="event_ts"),
            tf.TensorSpec([], tf.int32, name="k"),
            tf.TensorSpec([None], tf.string, name="exclude_item_ids"),
        ]
    )
    def recommend(self, user_id, device, event_ts, k, exclude_item_ids):
        gmf_u, user_part = self._user_side(user_id, device, event_ts)
        scores = self._scores(gmf_u, user_part, self.item_part, self.gmf_items, chunk_rows=CHUNK_ROWS)
        scores = scores * self.item_share[None, :]
        excluded = self.item_index.lookup(exclude_item_ids)
        excluded = tf.boolean_mask(excluded, excluded >= 0)
        mask = tf.scatter_nd(excluded[:, None], tf.ones_like(excluded, tf.bool), [self.n_items])
        scores = tf.where(mask[None, :], tf.constant(PAD_SCORE), scores)
        top = tf.math.top_k(scores, k=tf.minimum(k, self.n_items))
        # Fewer than k items left after the exclusions: the rest is explicit padding, never an excluded id.
        padded = tf.equal(top.values, PAD_SCORE)
        item_ids = tf.where(padded, tf.constant(PAD_ITEM_ID), tf.gather(self.item_ids, top.indices))
        return {"item_ids": item_ids, "scores": top.values}

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="user_id"),
            tf.TensorSpec([None], tf.string, name="device"),
            tf.TensorSpec([None], tf.int64, name="event_ts"),
            tf.TensorSpec([None], tf.string, name="item_ids"),
        ]
    )
    def score_items(self, user_id, device, event_ts, item_ids):
        """Scores of given catalogue items for each user; `known` is False for ids not in the catalogue."""
        gmf_u, user_part = self._user_side(user_id, device, event_ts)
        index = self.item_index.lookup(item_ids)
        safe = tf.maximum(index, 0)
        scores = self._scores(
            gmf_u, user_part, tf.gather(self.item_part, safe), tf.gather(self.gmf_items, safe)
        )
        return {"scores": tf.where(index[None, :] >= 0, scores, tf.constant(-1.0)), "known": index >= 0}


def _count_mlp_layers(model) -> int:
    return sum(1 for layer in model.layers if layer.name.startswith("mlp_") and layer.name[4:].isdigit())
