"""The training objective over the NeuMF score: pointwise log loss for click-through rate, or a ranking
loss (pairwise BPR, or a sampled softmax) of each click against its sampled negatives.

Every objective keeps the pointwise log loss on the logged impressions, so the served probability stays
tied to what users were shown: a click weighs trainer.click_weight, a logged non-click
trainer.impression_weight, and the sampled negatives of a click count on top (1 each for logloss, one
ranking term for bpr and softmax). A log of clicks alone (MovieLens) has no non-click to weigh a click's
log loss against: there it only lifts every clicked item, and popular ones most, so a ranking loss
trains better without it (click_weight 0; docs/bench/quality-notes.md). The trained and exported model
is the plain NeuMF: this wrapper only changes how it learns.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

from components.model import features as F
from components.model.model import INPUT_FEATURES, LOGIT_LAYER, ModelParams
from components.model.negatives import ITEM_SIDE, LOG_Q, NEG_LOG_Q


class SampledNegativesTrainer(keras.Model):
    """Fits `model` on batches that carry sampled negatives (components/model/negatives.py)."""

    def __init__(
        self,
        model: keras.Model,
        loss: str,
        params: ModelParams,
        *,
        click_weight: float,
        impression_weight: float,
    ):
        super().__init__(name="neumf_trainer")
        self.neumf = model
        self.logit = keras.Model(model.input, model.get_layer(LOGIT_LAYER).output)
        self.loss_name = loss
        self.click_weight = click_weight
        self.impression_weight = impression_weight
        self.objective = keras.metrics.Mean(name="loss")
        self.compile(
            optimizer=keras.optimizers.Adam(params.learning_rate),
            loss=keras.losses.BinaryCrossentropy(),
            metrics=[keras.metrics.AUC(name="auc")],
            steps_per_execution=params.steps_per_execution,
        )

    def call(self, features, training=False):
        return self.neumf({k: features[k] for k in INPUT_FEATURES}, training=training)

    def _negative_logits(self, features) -> tf.Tensor:
        """[batch, negatives] logits of each row's user context with its sampled items."""
        negatives = tf.shape(features[ITEM_SIDE[F.T_ITEM]])[1]
        rows = {
            name: tf.reshape(features[ITEM_SIDE[name]], [-1])
            if name in ITEM_SIDE
            else tf.repeat(features[name], negatives, axis=0)
            for name in INPUT_FEATURES
        }
        return tf.reshape(self.logit(rows, training=True), [-1, negatives])

    def objective_terms(
        self,
        logits: tf.Tensor,
        negative_logits: tf.Tensor,
        labels: tf.Tensor,
        log_q: tf.Tensor | float = 0.0,
        negative_log_q: tf.Tensor | float = 0.0,
    ) -> tf.Tensor:
        """Per row: the log loss on the logged impression (a click weighs click_weight, a logged non-click
        impression_weight), plus the click's loss against its sampled negatives.

        The softmax subtracts from each logit the log-probability of drawing its item (`log_q`, the logQ
        correction of a sampled softmax), so it estimates the softmax over the whole catalogue however the
        negatives were drawn: without it, popularity sampling would teach the model to score popular items
        down for being drawn often. Under uniform sampling the correction is one constant and changes
        nothing."""
        weight = labels * self.click_weight + (1.0 - labels) * self.impression_weight
        impression = weight * tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
        if self.loss_name == "logloss":
            ranked = tf.reduce_sum(tf.nn.softplus(negative_logits), axis=1)  # log loss of label 0 each
        elif self.loss_name == "bpr":
            ranked = tf.reduce_mean(tf.nn.softplus(negative_logits - logits[:, None]), axis=1)
        else:  # softmax over the click and its negatives, the click the right answer
            click, drawn = logits - log_q, negative_logits - negative_log_q
            ranked = tf.reduce_logsumexp(tf.concat([click[:, None], drawn], 1), axis=1) - click
        return impression + labels * ranked

    def train_step(self, data):
        features, labels = data
        labels = tf.cast(tf.reshape(labels, [-1]), tf.float32)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            logits = tf.reshape(self.logit({k: features[k] for k in INPUT_FEATURES}, training=True), [-1])
            negative_logits = self._negative_logits(features)
            terms = self.objective_terms(logits, negative_logits, labels, features[LOG_Q], features[NEG_LOG_Q])
            # Mean over the global batch (gradients are summed across replicas), plus the L2 penalty.
            loss = tf.reduce_sum(terms) / tf.cast(tf.size(labels) * replicas, tf.float32)
            if self.neumf.losses:
                loss += tf.add_n(self.neumf.losses) / replicas
        self.optimizer.minimize(loss, self.trainable_variables, tape=tape)
        self.objective.update_state(loss * replicas)
        self.compiled_metrics.update_state(labels, tf.sigmoid(logits))
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        """The served probability's log loss on logged impressions (validation and evaluate)."""
        features, labels = data
        probabilities = self(features, training=False)
        self.objective.update_state(
            self.compiled_loss(labels, probabilities, regularization_losses=self.losses)
        )
        self.compiled_metrics.update_state(labels, probabilities)
        return {m.name: m.result() for m in self.metrics}

    @property
    def metrics(self):
        # Keras reports and resets these objects, not train_step's return value: the loss is ours.
        return [self.objective, *self.compiled_metrics.metrics]
