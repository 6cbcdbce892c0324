"""The one validated configuration of a recpipe run.

Every setting a run depends on (paths, split, hyperparameters, gates, Beam args) lives here with its
default, so configs/*.yaml only says what differs. Unknown keys and wrong types are refused with the
dotted name of the key, because a typo in a nightly job's YAML must fail loudly, not be ignored.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from components import storage
from components.model.features import RAW_FEATURES
from pipeline.data.layout import SHARD_PATTERN
from pipeline.nodes import PHASES


def check_kfp_cron(cron: str) -> str:
    """KFP's cron has six fields, seconds first; a five-field (Unix) cron would mean every minute."""
    fields = cron.split()
    if len(fields) != 6:
        raise ValueError(
            f"KFP cron needs 6 fields, seconds first (e.g. '0 0 2 * * *' = 02:00 daily); {cron!r} has "
            f"{len(fields)}" + (": a 5-field cron would run every minute" if len(fields) == 5 else "")
        )
    return cron


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Strict):
    root: str = Field("data/clicklog", description="Folder holding span-YYYYMMDD/ folders of gzip TFRecords.")
    span: Literal["latest"] | int = Field(
        "latest", description="'latest' picks the newest span; an int YYYYMMDD picks that span."
    )
    file_pattern: str = SHARD_PATTERN
    train_buckets: int = Field(4, ge=1, description="Hash buckets sent to the train split.")
    eval_buckets: int = Field(1, ge=1, description="Hash buckets sent to the eval split.")
    split_feature: str | None = Field(
        None, description="Feature hashed to split (e.g. user_id); None hashes the whole example."
    )
    max_duplicate_fraction: float = Field(
        0.01,
        ge=0,
        le=1,
        description="Stop the night if more events than this repeat another's user, item, time and position.",
    )
    event_ts_tolerance_hours: float = Field(
        6.0,
        ge=0,
        description="An event whose event_ts falls more than this far outside its span's day (UTC) stops the "
        "night: a wrong clock or a mislabelled folder.",
    )
    max_id_length: int = Field(256, ge=1, description="Longer user_id / item_id values stop the night.")
    min_events: int = Field(100, ge=0, description="A span with fewer events stops the night.")
    min_clicks: int = Field(10, ge=0, description="A span with fewer clicks stops the night.")
    min_users: int = Field(10, ge=0, description="A span with fewer distinct users stops the night.")
    min_items: int = Field(10, ge=0, description="A span with fewer distinct items stops the night.")
    future_tolerance_days: int = Field(
        1, ge=0, description="A span dated more than this many days after today (UTC) stops the night."
    )
    statistics_quantile_buckets: int = Field(
        100,
        ge=10,
        description="Quantile-histogram buckets StatisticsGen writes per numeric feature. The drift gate "
        "compares dwell_ms and item_price on them (schema/schema.pbtxt); zero-inflated, heavy-tailed dwell "
        "needs the resolution: at TFDV's 10, two normal days of 300,000 events came within 0.01 of a day "
        "with six times longer dwell (docs/BENCHMARKS.md, drift).",
    )

    @property
    def minimums(self) -> dict[str, int]:
        """The smallest span (pre-flight) and split (AnomalyGate) a night trains on, by what is counted."""
        return {
            "events": self.min_events,
            "clicks": self.min_clicks,
            "users": self.min_users,
            "items": self.min_items,
        }

    @field_validator("span")
    @classmethod
    def _span_is_a_date(cls, v: Any) -> Any:
        if isinstance(v, int) and not (19000101 <= v <= 29991231):
            raise ValueError(f"span must be 'latest' or a date YYYYMMDD, got {v}")
        return v


class WindowConfig(_Strict):
    """The temporal protocol: train on the days before the newest, evaluate on the newest."""

    spans: int = Field(
        0,
        ge=0,
        description="Train on up to this many spans before the newest and evaluate on the whole newest span "
        "(no future data in training). 0: the newest span alone, hash-split into train and eval.",
    )
    train_on_newest: bool = Field(
        False,
        description="Also train on the newest span's train split tonight, evaluating on its eval split only. "
        "Either way the newest span joins the window the next night.",
    )


class WarmStartConfig(_Strict):
    """Start from the model being served instead of from scratch (embeddings carried over by id string)."""

    enabled: bool = False
    source: Literal["serving", "blessed"] = Field(
        "serving",
        description="serving: the newest version under serving.root; blessed: newest blessed in MLMD.",
    )
    spans: int = Field(
        1, ge=1, description="A warm-started night trains on this many spans before the newest."
    )
    epochs: int = Field(
        2, ge=1, description="Epochs of a warm-started night (a full retrain: trainer.epochs)."
    )
    learning_rate_scale: float = Field(
        0.1,
        gt=0,
        le=1,
        description="A warm-started night trains at trainer.learning_rate times this. The served model is "
        "already fitted, and a day's epochs pull it toward that day: at 300,000 events a day, 0.3 left it "
        "below its own base model on the next day (AUC 0.866 against 0.875) while 0.1 kept it within 0.2% "
        "of a full retrain (docs/BENCHMARKS.md, warm start).",
    )
    on_incompatible: Literal["scratch", "fail"] = Field(
        "scratch",
        description="Base model with another embedding size or architecture: retrain the whole window from "
        "scratch, or stop the night.",
    )


class DriftConfig(_Strict):
    """Drift between the newest span and the one before it; thresholds live in schema/schema.pbtxt."""

    enabled: bool = Field(True, description="Block training and pushing when a drift comparator fires.")
    split: str = Field("train", description="Split of both spans whose statistics are compared.")


class TransformConfig(_Strict):
    id_oov_buckets: int = Field(10, ge=1, description="OOV buckets for user_id / item_id vocabularies.")
    category_oov_buckets: int = Field(1, ge=1, description="OOV buckets for device / item_category.")
    id_vocab_min_frequency: int = Field(1, ge=1, description="Ids seen fewer times than this map to OOV.")
    quantile_buckets: int = Field(8, ge=2, description="Buckets for user_age, position and hour of day.")
    statistics: bool = Field(
        False,
        description="Also compute TFDV statistics of the data before and after transformation inside "
        "Transform. Off by default: StatisticsGen already describes the raw data, and on Beam's "
        "DirectRunner these statistics made Transform's memory grow with the span (7.5 GB at 10M events).",
    )


class TFJobConfig(_Strict):
    """Training workers as a Kubeflow TFJob (Training Operator, kubeflow.org/v1)."""

    api_host: str = Field("https://kubernetes.default.svc", description="Kubernetes API server.")
    token_env: str = Field(
        "K8S_TOKEN", description="Env var with a bearer token; in a pod the service account's."
    )
    namespace: str = "kubeflow"
    image: str | None = Field(None, description="Worker image; default kubeflow.image.")
    cpu: str = "4"
    memory: str = "16G"
    poll_s: float = Field(15.0, gt=0)
    timeout_s: float = Field(6 * 3600.0, gt=0)


class TrainerConfig(_Strict):
    # Where the model trains, not what it learns: handed to run_fn outside custom_config, so changing
    # them never invalidates the Trainer's cache (components/launch/__init__.py).
    LAUNCH_KEYS: ClassVar[frozenset[str]] = frozenset({"workers", "launcher", "max_restarts", "tfjob"})

    workers: int = Field(1, ge=1, description="Training workers under MultiWorkerMirroredStrategy.")
    launcher: Literal["local", "tfjob"] = Field("local", description="local processes, or a Kubeflow TFJob.")
    max_restarts: int = Field(2, ge=0, description="Restarts of the worker group after a worker dies.")
    tfjob: TFJobConfig = Field(default_factory=TFJobConfig)
    epochs: int = Field(5, ge=1)
    batch_size: int = Field(1024, ge=1)
    learning_rate: float = Field(0.003, gt=0)
    gmf_dim: int = Field(16, ge=1, description="GMF tower embedding size.")
    mlp_dim: int = Field(16, ge=1, description="MLP tower embedding size for user and item.")
    side_dim: int = Field(4, ge=1, description="Embedding size of each categorical side feature.")
    mlp_layers: list[int] = Field(default_factory=lambda: [32, 16, 8])
    l2: float = Field(1e-5, ge=0, description="L2 penalty on embeddings.")
    shuffle_buffer: int = Field(
        100_000, ge=1, description="Serialized examples the first epoch's record-level shuffle holds."
    )
    cache_examples: bool = Field(
        True,
        description="Keep parsed batches in memory after the first epoch (about 70 bytes per example, "
        "twice that while shuffling) so later epochs skip gzip and parsing and shuffle the whole split; "
        "switch off for spans that do not fit in a worker's memory (then raise shuffle_buffer).",
    )
    cache_max_examples: int = Field(
        4_000_000,
        ge=0,
        description="Above this many examples in a split the cache is skipped, so memory stays bounded "
        "however large a span grows (about 0.6 GB of cache at the limit).",
    )
    steps_per_execution: int = Field(
        16,
        ge=1,
        description="Training steps Keras runs per call into the compiled graph. A NeuMF step is a few "
        "milliseconds, so one Python round trip per step cost about half of every epoch at 1M events "
        "(docs/BENCHMARKS.md, throughput); the steps and their results are the same at any value.",
    )
    disk_cache: bool = Field(
        True,
        description="Above cache_max_examples, keep the first epoch's parsed batches in a file on the "
        "worker's local disk (TMPDIR, about 70 bytes per example, removed after training) instead of "
        "decompressing and parsing the split again every epoch.",
    )
    seed: int = 42
    negatives: int = Field(
        0,
        ge=0,
        description="Items sampled from the catalogue per click, fresh every epoch, as non-clicks (the NCF "
        "paper's training); 0 trains on the logged impressions alone.",
    )
    negative_sampling: Literal["uniform", "popularity"] = Field(
        "uniform", description="Sample negatives uniformly, or by click count ** popularity_alpha."
    )
    popularity_alpha: float = Field(0.75, ge=0, description="Exponent of popularity sampling.")
    loss: Literal["logloss", "bpr", "softmax"] = Field(
        "logloss",
        description="logloss: pointwise, over impressions and sampled negatives (click-through rate); "
        "bpr: pairwise, each click above its sampled negatives; softmax: each click against its sampled "
        "negatives as one softmax. Ranking losses need negatives >= 1.",
    )
    impression_weight: float = Field(
        1.0,
        ge=0,
        description="Weight of a logged non-click impression in the log loss; each sampled negative weighs 1. "
        "Acts only with negatives >= 1 (without them the trainer fits the plain log loss), so it is refused "
        "with negatives 0.",
    )
    click_weight: float = Field(
        1.0,
        ge=0,
        description="Weight of a click in the log loss on logged rows. With a ranking loss over sampled "
        "negatives, 0 trains a click by the ranking term alone (for logs of clicks only, e.g. MovieLens). "
        "Acts only with negatives >= 1 and is refused without them, as impression_weight.",
    )

    recommend_by: Literal["expected_clicks", "click_probability"] = Field(
        "expected_clicks",
        description="What `recommend` ranks the catalogue by: expected clicks (click probability x the "
        "item's share of logged impressions; for click logs, whose clicks follow what was shown) or the "
        "click probability alone (for logs of interactions only, e.g. MovieLens ratings).",
    )

    @model_validator(mode="after")
    def _loss_settings_agree(self) -> TrainerConfig:
        if self.loss != "logloss" and self.negatives < 1:
            raise ValueError(
                f"trainer.loss {self.loss} ranks each click against sampled negatives: set negatives >= 1"
            )
        weights = {"click_weight": self.click_weight, "impression_weight": self.impression_weight}
        weighed = {name: value for name, value in weights.items() if value != 1.0}
        if weighed and self.negatives < 1:
            settings = ", ".join(f"trainer.{name} {value:g}" for name, value in weighed.items())
            raise ValueError(
                f"{settings} would be ignored: the weights apply only when the trainer samples negatives, "
                "and trainer.negatives is 0. Set negatives >= 1, or leave the weights at 1"
            )
        if self.loss == "logloss" and self.click_weight == 0:
            raise ValueError(
                "trainer.click_weight 0 leaves trainer.loss logloss no term that scores a click up: "
                "raise click_weight, or choose loss bpr or softmax"
            )
        return self

    @field_validator("mlp_layers")
    @classmethod
    def _layers_positive(cls, v: list[int]) -> list[int]:
        if not v or any(n <= 0 for n in v):
            raise ValueError("mlp_layers must be a non-empty list of positive layer widths")
        return v


class EvaluationConfig(_Strict):
    auc_lower_bound: float = Field(0.65, ge=0, le=1, description="Bless only if AUC >= this.")
    ndcg_lower_bound: float = Field(0.5, ge=0, le=1, description="Bless only if NDCG@k >= this.")
    ndcg_top_k: int = Field(10, ge=1)
    max_auc_drop: float = Field(
        0.01, ge=0, le=1, description="Bless only if AUC >= baseline AUC - this (baseline = last blessed)."
    )
    max_ndcg_drop: float = Field(0.01, ge=0, le=1)
    slice_features: list[str] = Field(default_factory=lambda: ["device"])
    max_examples: int | None = Field(
        100_000,
        ge=1,
        description="Evaluate on a fixed sample of users holding about this many of the newest span's "
        "examples (EvalSample), so the Evaluator's time and memory stay bounded however large a span grows "
        "(it scores every example with both models in TFMA's per-example Python; with TFMA's own grouped "
        "NDCG it peaked at 4.8 GB on a 200,000-example eval split). A span under the cap is evaluated "
        "whole. None: every example, unbounded.",
    )


class FeedConfig(_Strict):
    """The feed-quality gate (components/feed_gate.py): the candidate's own top-K over the whole catalogue
    for the users who clicked in the evaluated span, against the most-popular list and the baseline."""

    enabled: bool = Field(True, description="Off: the gate passes every model it is given, and says so.")
    k: int = Field(10, ge=1, description="Length of the feed scored (Recall@K, NDCG@K).")
    min_lift_over_popularity: float = Field(
        0.05,
        ge=-1,
        description="Bless only if NDCG@K >= (1 + this) x the most-popular list's NDCG@K (a negative value "
        "tolerates a feed that much below popularity, for data too small to learn from).",
    )
    max_drop: float = Field(
        0.02, ge=0, le=1, description="Bless only if NDCG@K >= the baseline (last blessed) model's - this."
    )
    max_users: int = Field(2000, ge=1, description="Clicking users scored, a fixed hash-chosen subset.")


class ServingConfig(_Strict):
    root: str = Field("serving", description="TF Serving model base directory's parent.")
    model_name: str = Field("recommender", pattern=r"^[A-Za-z0-9_\-]+$")
    keep_versions: int = Field(5, ge=1, description="Newest versions kept under the model base path.")
    latency_budget_ms: float = Field(50.0, gt=0, description="Serving check: p99 per warm-up request.")
    check_repeats: int = Field(50, ge=1, description="Serving check: timed replays of each warm-up request.")
    base_path_in_server: str | None = Field(
        None,
        description="Where TF Serving sees serving.root (e.g. /models) for models.config; None: local path.",
    )


class BeamConfig(_Strict):
    direct_running_mode: Literal["in_memory", "multi_threading", "multi_processing"] = "in_memory"
    direct_num_workers: int = Field(1, ge=0, description="0 = one per core.")
    extra_args: list[str] = Field(default_factory=list)

    def pipeline_args(self) -> list[str]:
        return [
            f"--direct_running_mode={self.direct_running_mode}",
            f"--direct_num_workers={self.direct_num_workers}",
            *self.extra_args,
        ]


class MetadataConfig(_Strict):
    """Where MLMD lives: SQLite under run_root locally; MySQL when several pods share it (Kubeflow)."""

    kind: Literal["sqlite", "mysql"] = "sqlite"
    host: str = "mysql.kubeflow.svc.cluster.local"
    port: int = Field(3306, ge=1, le=65535)
    database: str = "recpipe_mlmd"
    user: str = "root"
    password_env: str = Field("MLMD_MYSQL_PASSWORD", description="Env var holding the MySQL password.")
    secret_name: str = Field("recpipe-mlmd", description="Kubernetes secret mounted into that env var.")
    secret_key: str = "password"


class StorageConfig(_Strict):
    """How pods reach an s3:// object store (MinIO in open-source Kubeflow); gs:// needs none of this.

    The keys come from a Kubernetes secret into AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, read by both
    TensorFlow's S3 plugin and Beam's S3 filesystem; they never enter the compiled spec.
    """

    s3_endpoint: str | None = Field(None, description="S3 API endpoint (AWS_ENDPOINT_URL_S3 in the pods).")
    s3_region: str = "us-east-1"
    secret_name: str = Field("mlpipeline-minio-artifact", description="Secret holding the S3 keys.")
    access_key_key: str = "accesskey"
    secret_key_key: str = "secretkey"


class PhaseResources(_Strict):
    cpu: str = "2"
    memory: str = "8G"
    retries: int = Field(1, ge=0, le=10)


class KubeflowConfig(_Strict):
    image: str = Field(
        "ghcr.io/example/recpipe:0.1.0", description="Component image built from kfp/Dockerfile."
    )
    pipeline_root: str = Field("gs://your-bucket/recpipe", description="Artifacts of every phase; shared.")
    host: str | None = Field(None, description="KFP API endpoint; else env KF_PIPELINES_ENDPOINT.")
    namespace: str = "kubeflow"
    experiment: str = "recpipe-nightly"
    token_env: str = Field("KFP_TOKEN", description="Env var holding a bearer token for the KFP API.")
    schedule_cron: str = Field("0 0 2 * * *", description="KFP cron: 6 fields, seconds first.")
    span_offset_days: int = Field(1, ge=0, description="A run scheduled on day D processes span D - offset.")
    service_account: str | None = None
    phases: dict[str, PhaseResources] = Field(
        default_factory=dict, description="Per-phase resources by name."
    )

    @field_validator("schedule_cron")
    @classmethod
    def _six_field_cron(cls, v: str) -> str:
        return check_kfp_cron(v)

    @field_validator("phases")
    @classmethod
    def _known_phases(cls, v: dict) -> dict:
        unknown = sorted(set(v) - set(PHASES))
        if unknown:
            raise ValueError(f"unknown phases {unknown}; phases are {list(PHASES)}")
        return v


class RecpipeConfig(_Strict):
    pipeline_name: str = Field("recpipe", pattern=r"^[A-Za-z0-9_\-]+$")
    run_root: str = Field("runs/local", description="Pipeline root; MLMD SQLite lives under it.")
    schema_dir: str = Field("schema", description="Folder holding the curated schema.pbtxt.")
    enable_cache: bool = True
    night_lock_wait_s: float = Field(
        0,
        ge=0,
        description="A night finding another night running on its run root or serving root waits this "
        "long for it, then stops naming it (pipeline/night_lock.py).",
    )
    night_lock_lease_s: int = Field(
        120,
        ge=2,
        description="MySQL MLMD only: the night's lock connection is pinged four times per lease, and the "
        "server drops it (releasing the lock) after this long without one, so a night whose node vanished "
        "without closing its connection frees the roots within a lease, not after the server's wait_timeout "
        "(8 hours by default) or TCP keepalive (about 2).",
    )
    data: DataConfig = Field(default_factory=DataConfig)
    window: WindowConfig = Field(default_factory=WindowConfig)
    warm_start: WarmStartConfig = Field(default_factory=WarmStartConfig)
    drift: DriftConfig = Field(default_factory=DriftConfig)
    transform: TransformConfig = Field(default_factory=TransformConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    feed: FeedConfig = Field(default_factory=FeedConfig)
    serving: ServingConfig = Field(default_factory=ServingConfig)
    beam: BeamConfig = Field(default_factory=BeamConfig)
    metadata: MetadataConfig = Field(default_factory=MetadataConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    kubeflow: KubeflowConfig = Field(default_factory=KubeflowConfig)

    @model_validator(mode="after")
    def _slices_are_features(self) -> RecpipeConfig:
        unknown = [f for f in self.evaluation.slice_features if f not in RAW_FEATURES]
        if unknown:
            raise ValueError(
                f"evaluation.slice_features names unknown features {unknown}; known: {sorted(RAW_FEATURES)}"
            )
        return self

    # Paths derived from the config: one place, so runners and reports agree.
    # Strings, never pathlib: a root may be gs:// or s3:// (components/storage.py).
    @property
    def metadata_path(self) -> str:
        return storage.join(self.run_root, "metadata.sqlite")

    @property
    def pipeline_root(self) -> str:
        return storage.join(self.run_root, "pipeline")

    @property
    def serving_model_dir(self) -> str:
        return storage.join(self.serving.root, self.serving.model_name)

    @property
    def history_dir(self) -> str:
        """One JSON record and one HTML report per night (recpipe history / recpipe report)."""
        return storage.join(self.run_root, "history")

    @property
    def schema_file(self) -> str:
        return storage.join(self.schema_dir, "schema.pbtxt")

    @property
    def roots(self) -> dict[str, str]:
        """Every root a night reads or writes, by config key."""
        return {"data.root": self.data.root, "run_root": self.run_root, "serving.root": self.serving.root}

    def with_overrides(self, **dotted: Any) -> RecpipeConfig:
        """Return a copy with `section.key=value` overrides applied and re-validated."""
        data = self.model_dump()
        for key, value in dotted.items():
            node = data
            *parents, leaf = key.split(".")
            for part in parents:
                node = node[part]
            node[leaf] = value
        return _validate(data, source="<overrides>")


def _format_errors(err: ValidationError, source: str) -> str:
    lines = [f"invalid config {source}:"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "<top level>"
        if e["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key (remove it or check its spelling)")
        else:
            lines.append(f"  {key}: {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


def _validate(data: dict[str, Any], source: str) -> RecpipeConfig:
    try:
        return RecpipeConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_errors(err, source)) from None


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(data: Any, source: str, key: str = "") -> Any:
    """`${NAME}` and `${NAME:-default}` in string values, from the environment.

    What differs between a cluster and a test of the same config (a database host, a store endpoint)
    comes from the environment, so the shipped configs/kubeflow.yaml is the one the tests run. A whole
    value that is one reference keeps the type YAML would give the text (a port stays an int).
    """
    if isinstance(data, dict):
        return {k: expand_env(v, source, f"{key}.{k}" if key else str(k)) for k, v in data.items()}
    if isinstance(data, list):
        return [expand_env(v, source, f"{key}[{i}]") for i, v in enumerate(data)]
    if not isinstance(data, str) or "${" not in data:
        return data

    def value(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is None:
            raise ConfigError(
                f"invalid config {source}:\n  {key}: environment variable {name} is not set "
                f"(set it, or write ${{{name}:-default}})"
            )
        return default

    expanded = _ENV_REF.sub(value, data)
    return yaml.safe_load(expanded) if _ENV_REF.fullmatch(data) and expanded else expanded


def load_config(path: str | Path, base_dir: str | Path | None = None) -> RecpipeConfig:
    """Read and validate a YAML config.

    Relative paths in it are taken relative to `base_dir` (default: the current directory), which is
    where `make` and the CLI run, so configs stay portable between a laptop and a pod.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path} (see configs/ for examples)")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config {path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping of keys, got {type(data).__name__}")
    config = _validate(expand_env(data, source=str(path)), source=str(path))
    if base_dir is not None:
        config = resolve_paths(config, Path(base_dir))
    return config


def resolve_paths(config: RecpipeConfig, base_dir: Path) -> RecpipeConfig:
    """Make every path in the config absolute against base_dir (TFX artifacts store absolute URIs)."""

    def absolute(p: str) -> str:
        return storage.absolute(p, str(base_dir))

    return config.with_overrides(
        run_root=absolute(config.run_root),
        schema_dir=absolute(config.schema_dir),
        **{"data.root": absolute(config.data.root), "serving.root": absolute(config.serving.root)},
    )
