"""Transform that reads each split file by file, in batches, without a Beam element per record.

TFX's Transform reads its input through tfxio's TFExampleRecord, whose BeamSource makes every record a Beam
element of its own (Beam's TFRecord reader, a CRC check per record in Python) before batching them again for
tfx_bsl's decoder: the cost StatisticsGen had (components/statistics_gen.py). Here the same TFXIO, with the
same schema, projection and decoder, hands Beam the files instead; each is read in batches with tf.data.
Analyzers then see the same examples in another order: vocabularies come out identical, quantile boundaries
the same on spans small enough to be exact (and within TFT's sketch error above that).

Same component spec, outputs and id as TFX's Transform; only how the examples are read differs. A dataset
that is not a tf.Example TFRecord split (recpipe's ExampleGen writes nothing else) is read by TFX's own
TFXIO.
"""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam
import pyarrow as pa
import tensorflow as tf
from tfx.components import Transform as _TfxTransform
from tfx.components.transform import executor as transform_executor
from tfx.dsl.components.base import executor_spec
from tfx_bsl.tfxio import tensor_representation_util, tf_example_record

from components import storage
from components.example_gen import BATCH, read_batches


class _ReadFile(beam.DoFn):
    """One shard in, its serialized records out in lists of at most `batch_size`."""

    def __init__(self, batch_size: int):
        self._batch_size = batch_size

    def process(self, path: str) -> Iterator[list[bytes]]:
        for batch in read_batches(path):
            for start in range(0, len(batch), self._batch_size):
                yield list(batch[start : start + self._batch_size])


class BatchedExampleRecord(tf_example_record.TFExampleRecord):
    """TFExampleRecord whose BeamSource reads whole files in batches; decoding is TFXIO's own."""

    def BeamSource(self, batch_size: int | None = None) -> beam.PTransform:  # noqa: N802 - TFXIO's name
        patterns = self._file_pattern
        decode = tf_example_record._DecodeBatchExamplesDoFn(  # noqa: SLF001 - the decoder TFXIO uses
            self._GetSchemaForDecoding(), self.raw_record_column_name
        )

        @beam.typehints.with_output_types(pa.RecordBatch)
        def read(pipeline: beam.Pipeline):
            files = sorted({f for pattern in patterns for f in tf.io.gfile.glob(storage.use(pattern))})
            if not files:
                raise RuntimeError(f"Transform: no file matches {patterns}")
            return (
                pipeline
                | "Files" >> beam.Create(files)
                | "Spread" >> beam.Reshuffle()  # so a distributed runner gives files to many workers
                | "Read" >> beam.ParDo(_ReadFile(batch_size or BATCH))
                | "Decode" >> beam.ParDo(decode)
            )

        return beam.ptransform_fn(read)()

    def _ProjectImpl(self, tensor_names: list[str]) -> BatchedExampleRecord:  # noqa: N802
        # As TFExampleRecord projects, keeping this class (Transform projects before it reads).
        return BatchedExampleRecord(
            file_pattern=self._file_pattern,
            schema=tensor_representation_util.ProjectTensorRepresentationsInSchema(
                self._schema, tensor_names
            ),
            raw_record_column_name=self.raw_record_column_name,
            telemetry_descriptors=self.telemetry_descriptors,
        )


class _BatchedProcessor(transform_executor.TransformProcessor):
    """TFX's TransformProcessor, reading tf.Example TFRecord splits through BatchedExampleRecord."""

    def _CreateTFXIO(self, dataset, schema):  # noqa: N802 - TFX's hook
        tfxio = super()._CreateTFXIO(dataset, schema)
        if type(tfxio) is not tf_example_record.TFExampleRecord:
            return tfxio
        return BatchedExampleRecord(
            file_pattern=tfxio._file_pattern,  # noqa: SLF001 - what TFX resolved from the artifact
            schema=tfxio._schema,  # noqa: SLF001
            raw_record_column_name=tfxio.raw_record_column_name,
            telemetry_descriptors=tfxio.telemetry_descriptors,
        )


class BatchedExecutor(transform_executor.Executor):
    """Transform's executor with _BatchedProcessor.

    TFX's Do builds its TransformProcessor by the module's name for it and takes no other, so the name
    points at ours for the length of the call (components run one at a time in an executor's process).
    """

    def Do(self, input_dict, output_dict, exec_properties) -> None:  # noqa: N802 - TFX's name
        tfx_processor = transform_executor.TransformProcessor
        transform_executor.TransformProcessor = _BatchedProcessor
        try:
            super().Do(input_dict, output_dict, exec_properties)
        finally:
            transform_executor.TransformProcessor = tfx_processor


class Transform(_TfxTransform):
    """TFX's Transform (same id, spec and outputs) with the batched reader."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(BatchedExecutor)
