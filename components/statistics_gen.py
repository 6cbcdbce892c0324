"""StatisticsGen that reads each split file by file, in batches, without a Beam element per record.

TFX's StatisticsGen reads through tfxio's BeamSource: Beam's TFRecord reader yields every record as an
element of its own, which is batched again before tfx_bsl decodes it into Arrow. At 1M events that
per-record reading and Beam's per-element work were about half of a py-spy profile of its 26 s.

Here the split is read through components/batched_tfxio.py's BatchedExampleRecord with no schema: Beam
hands out the files, each is read in batches with tf.data and decoded by the decoder TFXIO itself uses
(every feature as logged), and TFDV's GenerateStatistics runs as TFX runs it, with the same options,
writing the same artifact. Counts, missing values, uniques and top values come out identical; means and
TFDV's quantile sketches differ only by float summation order (both are order-dependent in TFX's own
reading as well). On the 1M run's newest day: 25.8 s -> 13.0 s.

Same component spec, outputs and id as TFX's StatisticsGen; only the executor differs. Anything recpipe
does not configure (a schema input, sharded output, per-split sample rates, filtered read paths, custom
split patterns, another payload format) goes to TFX's own executor.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import tensorflow_data_validation as tfdv
from tfx.components import StatisticsGen as _TfxStatisticsGen
from tfx.components.statistics_gen import executor as stats_executor
from tfx.components.util import examples_utils
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, json_utils, stats_utils

from components.batched_tfxio import BatchedExampleRecord
from components.example_gen import BATCH

_SPEC = standard_component_specs


def _tfx_reads_it(
    input_dict: dict[str, list], exec_properties: dict[str, Any], examples, options: tfdv.StatsOptions
) -> bool:
    """Whether the configuration asks for something only TFX's own executor does."""
    return bool(
        input_dict.get(_SPEC.SCHEMA_KEY)
        or exec_properties.get(_SPEC.SHARDED_STATS_OUTPUT_KEY)
        or json_utils.loads(exec_properties.get(_SPEC.SAMPLE_RATE_BY_SPLIT_KEY, "null"))
        or options.experimental_filter_read_paths
        or examples.has_custom_property(examples_utils.CUSTOM_SPLIT_PATTERN_PROPERTY_NAME)
        or examples_utils.get_payload_format(examples) != example_gen_pb2.FORMAT_TF_EXAMPLE
    )


class BatchedExecutor(stats_executor.Executor):
    """StatisticsGen's executor for gzipped tf.Example splits (what recpipe's ExampleGen writes)."""

    def Do(self, input_dict: dict[str, list], output_dict: dict[str, list], exec_properties: dict[str, Any]):
        examples = artifact_utils.get_single_instance(input_dict[_SPEC.EXAMPLES_KEY])
        options_json = exec_properties.get(_SPEC.STATS_OPTIONS_JSON_KEY)
        options = tfdv.StatsOptions.from_json(options_json) if options_json else tfdv.StatsOptions()
        if _tfx_reads_it(input_dict, exec_properties, examples, options):
            return super().Do(input_dict, output_dict, exec_properties)
        self._log_startup(input_dict, output_dict, exec_properties)
        excluded = json_utils.loads(exec_properties.get(_SPEC.EXCLUDE_SPLITS_KEY, "null")) or []
        splits = [s for s in artifact_utils.decode_split_names(examples.split_names) if s not in excluded]
        if not splits:
            raise ValueError(f"StatisticsGen: no split of {examples.uri} is left to describe")
        outputs = output_dict[_SPEC.STATISTICS_KEY]
        statistics = artifact_utils.get_single_instance(outputs)
        statistics.split_names = artifact_utils.encode_split_names(splits)
        statistics.span = examples.span
        try:  # as TFX's executor does: a link only where the artifact lives on a dashboard's storage
            link = stats_utils.generate_stats_dashboard_link(statistics)
        except Exception:  # noqa: BLE001 - TFX logs and goes on too
            logging.exception("StatisticsGen: no stats dashboard link")
            link = ""
        statistics.set_string_custom_property(stats_executor.STATS_DASHBOARD_LINK, link)
        statistics.set_json_value_custom_property(
            stats_executor.SAMPLE_RATE_BY_SPLIT_PROPERTY_NAME,
            json_utils.dumps({split: options.sample_rate or 1.0 for split in splits}),
        )
        with self._make_beam_pipeline() as pipeline:
            for split in splits:
                pattern = io_utils.all_files_pattern(artifact_utils.get_split_uri([examples], split))
                output = os.path.join(
                    artifact_utils.get_split_uri(outputs, split), stats_executor.DEFAULT_FILE_NAME
                )
                _ = (
                    pipeline
                    | f"Read[{split}]" >> BatchedExampleRecord(pattern).BeamSource(BATCH)
                    | f"GenerateStatistics[{split}]" >> tfdv.GenerateStatistics(options)
                    | f"Write[{split}]" >> tfdv.WriteStatisticsToBinaryFile(output)
                )
                logging.info("StatisticsGen: statistics of split %s go to %s", split, output)


class StatisticsGen(_TfxStatisticsGen):
    """TFX's StatisticsGen (same id, spec and outputs) with the batched executor."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(BatchedExecutor)
