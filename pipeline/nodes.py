"""The night's node ranges: the Kubeflow phases in order, each a slice of the one night (pipeline/night.py).

Light on purpose (no TFX import): the config validates phase names against this table.
"""

from __future__ import annotations

import dataclasses


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
        ("ImportExampleGen", "ImportSchemaGen"),
        ("AnomalyGate", "DriftGate"),
        starts_night=True,
        ends_night=False,
    ),
    "train-evaluate": NodeRange(
        ("training_window", "Transform", "latest_blessed_model_resolver", "EvalSample"),
        ("Evaluator",),
        starts_night=False,
        ends_night=False,
    ),
    "check-and-push": NodeRange(("ServingCheck",), ("Pusher",), starts_night=False, ends_night=True),
    "report": None,
}
