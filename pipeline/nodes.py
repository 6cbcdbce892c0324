"""Every node id of the pipeline, and the night's node ranges: the Kubeflow phases in order, each a slice of
the one night (pipeline/night.py).

Light on purpose (no TFX import): the config validates phase names against this table. The factory gives
each component its id from here, and every reader of MLMD (summaries, history, the planner) names nodes
with these constants, so a node id is written once.
"""

from __future__ import annotations

import dataclasses

EXAMPLE_GEN = "ImportExampleGen"
STATISTICS_GEN = "StatisticsGen"
SCHEMA_GEN = "ImportSchemaGen"
EXAMPLE_VALIDATOR = "ExampleValidator"
ANOMALY_GATE = "AnomalyGate"
PREVIOUS_STATISTICS = "previous_span_statistics"
DRIFT_GATE = "DriftGate"
TRAINING_WINDOW = "training_window"
TRANSFORM = "Transform"
TRAINER = "Trainer"
BLESSED_MODEL_RESOLVER = "latest_blessed_model_resolver"
EVAL_SAMPLE = "EvalSample"
EVALUATOR = "Evaluator"
FEED_GATE = "FeedQualityGate"
SERVING_CHECK = "ServingCheck"
PUSHER = "Pusher"


@dataclasses.dataclass(frozen=True)
class NodeRange:
    """A slice of the night: its nodes, and whether it starts or ends the night."""

    from_nodes: tuple[str, ...] = ()  # () with to_nodes (): every node of the pipeline
    to_nodes: tuple[str, ...] = ()
    starts_night: bool = True  # pre-flight checks, the plan and ingesting earlier spans happen here
    ends_night: bool = True  # a successful slice that ends the night records it

    @property
    def whole(self) -> bool:
        return not self.from_nodes and not self.to_nodes


WHOLE_NIGHT = NodeRange()

# Kubeflow phases, in order; resolve-night and report run no TFX node. A resolver that is not downstream
# of a phase's from_nodes must be listed there itself (TFX partial runs).
PHASES: dict[str, NodeRange | None] = {
    "resolve-night": None,
    "validate-data": NodeRange(
        (EXAMPLE_GEN, SCHEMA_GEN),
        (ANOMALY_GATE, DRIFT_GATE),
        starts_night=True,
        ends_night=False,
    ),
    "train-evaluate": NodeRange(
        (TRAINING_WINDOW, TRANSFORM, BLESSED_MODEL_RESOLVER, EVAL_SAMPLE),
        (FEED_GATE,),
        starts_night=False,
        ends_night=False,
    ),
    "check-and-push": NodeRange((SERVING_CHECK,), (PUSHER,), starts_night=False, ends_night=True),
    "report": None,
}

# The partial run that ingests and validates one earlier span (the schema is imported again: a partial
# run takes a skipped node's outputs from the previous run, and the first night has none).
INGEST = NodeRange((EXAMPLE_GEN, SCHEMA_GEN), (ANOMALY_GATE,), starts_night=False, ends_night=False)
