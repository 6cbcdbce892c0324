"""ImportExampleGen that writes each split as it reads it, without TFX's in-memory reshuffle.

TFX's ExampleGen reshuffles every split before writing it (`write_split.WriteSplit`: a Reshuffle, i.e. a
GroupByKey). Beam's DirectRunner holds everything a GroupByKey receives in the runner's memory, so the
whole span sat in memory: ExampleGen peaked at 1.9 GB at 1M events and would need about ten times that at
10M. Nothing downstream relies on that order: StatisticsGen, Transform and the Evaluator are
order-free, and the Trainer shuffles (a record buffer, then the whole cached split every epoch). On a
distributed runner the reshuffle only rebalanced work, which reading many files already does.

Same component spec, outputs, id and driver (span resolution) as TFX's ImportExampleGen; only the
executor differs.
"""

from __future__ import annotations

import os
from typing import Any

import apache_beam as beam
from tfx.components import ImportExampleGen as _TfxImportExampleGen
from tfx.components.example_gen import utils, write_split
from tfx.components.example_gen.import_example_gen import executor as import_executor
from tfx.components.util import examples_utils
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils


class StreamingExecutor(import_executor.Executor):
    """ImportExampleGen's executor with the reshuffle left out: read -> partition -> write, one pass."""

    def Do(self, input_dict: dict[str, list], output_dict: dict[str, list], exec_properties: dict[str, Any]):
        self._log_startup(input_dict, output_dict, exec_properties)
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
        output_config = example_gen_pb2.Output()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], output_config)
        examples = output_dict[standard_component_specs.EXAMPLES_KEY]
        artifact = artifact_utils.get_single_instance(examples)
        artifact.split_names = artifact_utils.encode_split_names(
            utils.generate_output_split_names(input_config, output_config)
        )
        with self._make_beam_pipeline() as pipeline:
            for split, records in self.GenerateExamplesByBeam(pipeline, exec_properties).items():
                path = os.path.join(
                    artifact_utils.get_split_uri(examples, split), write_split.DEFAULT_FILE_NAME
                )
                _ = (
                    records
                    | f"Serialize[{split}]" >> beam.ParDo(write_split.MaybeSerialize())
                    | f"Write[{split}]" >> beam.io.WriteToTFRecord(path, file_name_suffix=".gz")
                )
        if payload_format := exec_properties.get(standard_component_specs.OUTPUT_DATA_FORMAT_KEY):
            examples_utils.set_payload_format(artifact, payload_format)
        file_format = exec_properties.get(standard_component_specs.OUTPUT_FILE_FORMAT_KEY)
        if file_format:
            examples_utils.set_file_format(artifact, write_split.to_file_format_str(file_format))


class ImportExampleGen(_TfxImportExampleGen):
    """TFX's ImportExampleGen (same id, spec and span handling) with the streaming executor."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(StreamingExecutor)
