"""create_pipeline(config, night): the recpipe DAG, top to bottom in data-flow order. Pure wiring: what
to train on comes planned (pipeline/plan.py), and nothing here reads a span folder or MLMD.

Module code is referenced by import path (components.model.transform.preprocessing_fn,
components.launch.trainer.run_fn), not module_file: the package is installed in every environment that
runs it (venv, container image), and TFX then does not pack a wheel per run. TFX's cache key does not see
code referenced this way, so a fingerprint of components/model/ (the code Transform and the Trainer run,
and nothing else) goes into their custom_config: editing the model or the transform re-runs what it
affects; editing a launcher, a gate or the serving code retrains nothing.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from tfx import v1 as tfx

import components.model
from components.anomaly_gate import AnomalyGate
from components.drift_gate import DriftGate, statistics_options
from components.eval_sample import EvalSample
from components.evaluation import build_eval_config, evaluated_features
from components.evaluator import Evaluator
from components.example_gen import ImportExampleGen
from components.feed_gate import FeedQualityGate
from components.serving_check import ServingCheck
from components.serving_push import ServingPusher
from components.span_window import SpanWindowStrategy
from components.statistics_gen import StatisticsGen
from components.transform import Transform
from pipeline import nodes
from pipeline.config import RecpipeConfig
from pipeline.data.layout import SPAN_GLOB
from pipeline.mlmd import metadata_connection
from pipeline.plan import Night, trainer_settings

TRANSFORM_FN = "components.model.transform.preprocessing_fn"
RUN_FN = "components.launch.trainer.run_fn"
MODEL_CODE = Path(components.model.__file__).parent


def code_fingerprint(folder: Path | None = None) -> str:
    """Hash of the code Transform and the Trainer run (every .py under components/model/)."""
    folder = folder or MODEL_CODE
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.py")):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _example_gen(config: RecpipeConfig) -> ImportExampleGen:
    data = config.data
    split = tfx.proto.SplitConfig(
        splits=[
            tfx.proto.SplitConfig.Split(name="train", hash_buckets=data.train_buckets),
            tfx.proto.SplitConfig.Split(name="eval", hash_buckets=data.eval_buckets),
        ],
    )
    if data.split_feature:  # an empty name would be taken as a feature called ""
        split.partition_feature_name = data.split_feature
    range_config = None
    if data.span != "latest":  # default: ExampleGen's driver picks the newest span
        range_config = tfx.proto.RangeConfig(
            static_range=tfx.proto.StaticRange(start_span_number=data.span, end_span_number=data.span)
        )
    return ImportExampleGen(
        input_base=data.root,
        input_config=tfx.proto.Input(
            splits=[tfx.proto.Input.Split(name="clicks", pattern=f"{SPAN_GLOB}/{data.file_pattern}")]
        ),
        output_config=tfx.proto.Output(split_config=split),
        range_config=range_config,
    ).with_id(nodes.EXAMPLE_GEN)


def _spans(spans: list[int], id_: str, producer, output_key: str) -> tfx.dsl.Resolver:
    """The newest artifact of each listed span, from every run of `producer` (tonight's included).

    A plain Channel, not producer.outputs[...]: an output channel would only see this run's artifacts,
    and the window is made of spans ingested on earlier nights.
    """
    channel = tfx.dsl.Channel(
        type=producer.outputs[output_key].type, producer_component_id=producer.id, output_key=output_key
    )
    resolver = tfx.dsl.Resolver(
        strategy_class=SpanWindowStrategy,
        config={"spans": [int(s) for s in spans]},
        **{output_key: channel},
    ).with_id(id_)
    resolver.add_upstream_node(producer)  # after tonight's span is in MLMD
    return resolver


def create_pipeline(config: RecpipeConfig, night: Night) -> tfx.dsl.Pipeline:
    """The nightly DAG; `night` (pipeline/plan.py) says which spans to train on and what to start from."""
    fingerprint = code_fingerprint()

    # Read the newest (or the configured) span of click logs and split it into train / eval.
    example_gen = _example_gen(config)

    # Describe the data, and check it against the curated schema in schema/.
    statistics_gen = StatisticsGen(
        examples=example_gen.outputs["examples"],
        stats_options=statistics_options(config.data.statistics_quantile_buckets),
    ).with_id(nodes.STATISTICS_GEN)
    schema_gen = tfx.components.ImportSchemaGen(schema_file=config.schema_file).with_id(nodes.SCHEMA_GEN)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    ).with_id(nodes.EXAMPLE_VALIDATOR)

    # Stop the night here if the data broke the contract: nothing downstream runs.
    anomaly_gate = AnomalyGate(
        anomalies=example_validator.outputs["anomalies"],
        statistics=statistics_gen.outputs["statistics"],
        **{f"min_{name}": least for name, least in config.data.minimums.items()},
    ).with_id(nodes.ANOMALY_GATE)

    # ... or if it drifted from the span before it (comparators and thresholds: schema/schema.pbtxt).
    previous_statistics = _spans(
        [night.previous_span] if night.previous_span else [],
        nodes.PREVIOUS_STATISTICS,
        statistics_gen,
        "statistics",
    )
    drift_gate = DriftGate(
        statistics=statistics_gen.outputs["statistics"],
        previous_statistics=previous_statistics.outputs["statistics"],
        schema=schema_gen.outputs["schema"],
        split=config.drift.split,
        enabled=int(config.drift.enabled),
        span=night.span,
        previous_span=night.previous_span or 0,
    ).with_id(nodes.DRIFT_GATE)

    # The training window: earlier spans ingested on earlier nights (or tonight's span alone).
    window = _spans(list(night.train_spans or (night.span,)), nodes.TRAINING_WINDOW, example_gen, "examples")

    # Vocabularies, normalisation and buckets; the same graph is embedded in the served model.
    transform = Transform(
        examples=window.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=TRANSFORM_FN,
        custom_config={**config.transform.model_dump(), "code": fingerprint},
        disable_statistics=not config.transform.statistics,
        # Nothing feeds an analyzer cache back in (each night analyses its own window), so writing one
        # was pure cost.
        disable_analyzer_cache=True,
        # The Trainer applies the graph to the raw examples itself (training.transforming), as the served
        # model does; transformed copies on disk were most of Transform's time and read by no one else.
        materialize=False,
    ).with_id(nodes.TRANSFORM)
    transform.add_upstream_node(anomaly_gate)
    transform.add_upstream_node(drift_gate)

    # Train NeuMF under MultiWorkerMirroredStrategy and export the serving signatures.
    trainer = tfx.components.Trainer(
        run_fn=RUN_FN,
        examples=window.outputs["examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        custom_config={
            **trainer_settings(config),
            "epochs": night.epochs,
            "learning_rate": night.learning_rate or config.trainer.learning_rate,
            "warm_start_from": night.warm_start_from or "",
            "warm_start_on_incompatible": config.warm_start.on_incompatible,
            "model_name": config.serving.model_name,
            "code": fingerprint,
        },
    ).with_id(nodes.TRAINER)

    # The last blessed model is the baseline a new model must not fall behind.
    model_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id(nodes.BLESSED_MODEL_RESOLVER)

    # Bless only if AUC and NDCG@k clear their bars and do not regress against the baseline, measured
    # on the newest span: all of it when it was not trained on, else its held-out eval split.
    held_out = night.windowed and night.span not in night.train_spans
    eval_splits = ["train", "eval"] if held_out else ["eval"]
    eval_examples, eval_sample = example_gen.outputs["examples"], None
    eval_schema = schema_gen.outputs["schema"]
    if config.evaluation.max_examples:  # a fixed sample of users, so the Evaluator's memory is bounded
        eval_sample = EvalSample(
            examples=eval_examples,
            schema=schema_gen.outputs["schema"],
            splits=",".join(eval_splits),
            max_examples=config.evaluation.max_examples,
            columns=",".join(evaluated_features(config.evaluation.slice_features)),
        ).with_id(nodes.EVAL_SAMPLE)
        eval_sample.add_upstream_node(anomaly_gate)
        eval_sample.add_upstream_node(drift_gate)
        eval_examples, eval_schema = eval_sample.outputs["sampled"], eval_sample.outputs["evaluator_schema"]
    evaluator = Evaluator(
        examples=eval_examples,
        example_splits=eval_splits,
        model=trainer.outputs["model"],
        baseline_model=model_resolver.outputs["model"],
        schema=eval_schema,
        eval_config=build_eval_config(**config.evaluation.model_dump(exclude={"max_examples"})),
    ).with_id(nodes.EVALUATOR)

    # The feed users see: the candidate's own top-K over the whole catalogue for the evaluated span's
    # clicking users, against the most-popular list and the baseline model.
    feed_gate = FeedQualityGate(
        model=trainer.outputs["model"],
        blessing=evaluator.outputs["blessing"],
        examples=eval_examples,
        training_examples=window.outputs["examples"],
        transform_graph=transform.outputs["transform_graph"],
        baseline_model=model_resolver.outputs["model"],
        splits=",".join(eval_splits),
        enabled=int(config.feed.enabled),
        **config.feed.model_dump(exclude={"enabled"}),
    ).with_id(nodes.FEED_GATE)

    # Load the candidate as TF Serving would, replay its warm-up requests, check shapes and p99 latency.
    serving_check = ServingCheck(
        model=trainer.outputs["model"],
        blessing=feed_gate.outputs["feed_blessing"],
        latency_budget_ms=config.serving.latency_budget_ms,
        repeats=config.serving.check_repeats,
    ).with_id(nodes.SERVING_CHECK)

    # Only a model blessed by all three: a new version under <serving root>/<model name>/, appearing atomically.
    pusher = ServingPusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        feed_blessing=feed_gate.outputs["feed_blessing"],
        infra_blessing=serving_check.outputs["infra_blessing"],
        serving_root=config.serving.root,
        model_name=config.serving.model_name,
        keep_versions=config.serving.keep_versions,
        base_path_in_server=config.serving.base_path_in_server or "",
    ).with_id(nodes.PUSHER)

    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=[
            example_gen,
            statistics_gen,
            schema_gen,
            example_validator,
            anomaly_gate,
            previous_statistics,
            drift_gate,
            window,
            transform,
            trainer,
            model_resolver,
            *([eval_sample] if eval_sample else []),
            evaluator,
            feed_gate,
            serving_check,
            pusher,
        ],
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection(config),
        beam_pipeline_args=config.beam.pipeline_args(),
    )
