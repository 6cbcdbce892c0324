"""Transform that reads each split file by file, in batches, without a Beam element per record.

TFX's Transform reads its input through tfx_bsl's TFExampleRecord, one Beam element per record; here it
reads through components/batched_tfxio.py's BatchedExampleRecord, the same TFXIO with the same schema,
projection and decoder, which hands Beam the files and reads each in batches. Analyzers then see the same
examples in another order: vocabularies come out identical, quantile boundaries the same on spans small
enough to be exact (and within TFT's sketch error above that). 7 days of 1M events: 152 s -> 83 s.

Same component spec, outputs and id as TFX's Transform; only how the examples are read differs. A dataset
that is not a tf.Example TFRecord split (recpipe's ExampleGen writes nothing else) is read by TFX's own
TFXIO.
"""

from __future__ import annotations

from tfx.components import Transform as _TfxTransform
from tfx.components.transform import executor as transform_executor
from tfx.dsl.components.base import executor_spec

from components.batched_tfxio import batched, pointing


class _BatchedProcessor(transform_executor.TransformProcessor):
    """TFX's TransformProcessor, reading tf.Example TFRecord splits through BatchedExampleRecord (batched)."""

    def _CreateTFXIO(self, dataset, schema):  # noqa: N802 - TFX's hook
        return batched(super()._CreateTFXIO(dataset, schema))


class BatchedExecutor(transform_executor.Executor):
    """Transform's executor with _BatchedProcessor (TFX's Do builds its TransformProcessor by name)."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:  # noqa: N802 - TFX's name
        with pointing(transform_executor, "TransformProcessor", _BatchedProcessor):
            super().Do(input_dict, output_dict, exec_properties)


class Transform(_TfxTransform):
    """TFX's Transform (same id, spec and outputs) with the batched reader."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(BatchedExecutor)
