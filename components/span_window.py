"""A resolver for a window of spans: the newest artifact of each listed span.

TFX's SpanRangeStrategy would do, but for two things a nightly job on date-named spans hits: its
RollingRange counts spans by integer arithmetic (20240201 - 6 is not a week before 1 February), and it
returns every artifact of a span, so a span ingested twice (cache off, or its files re-exported) would be
trained on twice. The night planner (pipeline/plan.py) lists the spans from the span folders (leaving
out nights blocked for drift); this strategy returns one artifact per listed span, newest span first, and
an empty list (not None) when nothing matches, so an optional input (the previous span's statistics on
the first night) simply stays empty.
"""

from __future__ import annotations

from typing import Any

from tfx import types
from tfx.dsl.components.common import resolver

SPAN = "span"


def span_of(artifact: types.Artifact, store: Any = None) -> int:
    """Span of an Examples or ExampleStatistics artifact.

    ExampleGen writes the span as a custom property; StatisticsGen copies the Examples' span *property*,
    which ExampleGen leaves unset, so statistics say span 0 and their span is read from their input
    Examples through MLMD's lineage instead.
    """
    if artifact.has_custom_property(SPAN):
        return int(artifact.get_int_custom_property(SPAN) or artifact.get_string_custom_property(SPAN) or 0)
    if artifact.has_property(SPAN) and getattr(artifact, SPAN):
        return int(getattr(artifact, SPAN))
    if store is not None:
        return input_examples_span(store, artifact.id)
    return 0


def input_examples_span(store: Any, artifact_id: int, hops: int = 2) -> int:
    """The span of the Examples an artifact was derived from, up to `hops` executions upstream
    (statistics: one hop; ExampleValidator's anomalies: two). 0 if there is none."""
    from ml_metadata.proto import metadata_store_pb2 as mlmd_pb2

    events = store.get_events_by_artifact_ids([artifact_id])
    executions = [e.execution_id for e in events if e.type == mlmd_pb2.Event.OUTPUT]
    inputs = [
        e.artifact_id for e in store.get_events_by_execution_ids(executions) if e.type == mlmd_pb2.Event.INPUT
    ]
    parents = store.get_artifacts_by_id(inputs)
    for parent in parents:
        if SPAN in parent.custom_properties:
            return int(
                parent.custom_properties[SPAN].int_value or parent.custom_properties[SPAN].string_value
            )
    for parent in parents if hops > 1 else []:
        if span := input_examples_span(store, parent.id, hops - 1):
            return span
    return 0


def newest_per_span(
    artifacts: list[types.Artifact], spans: list[int], store: Any = None
) -> list[types.Artifact]:
    wanted, newest = set(spans), {}
    for artifact in artifacts:
        span = span_of(artifact, store)
        if span in wanted and (span not in newest or artifact.id > newest[span].id):
            newest[span] = artifact
    return [newest[span] for span in sorted(newest, reverse=True)]


class SpanWindowStrategy(resolver.ResolverStrategy):
    """Resolver(strategy_class=SpanWindowStrategy, config={'spans': [20240101, ...]}, examples=...)."""

    def __init__(self, spans: list[int]):
        self._spans = [int(s) for s in spans]

    def resolve_artifacts(self, store: Any, input_dict: dict[str, list[types.Artifact]]):
        return {
            key: newest_per_span(artifacts, self._spans, store) if self._spans else []
            for key, artifacts in input_dict.items()
        }
