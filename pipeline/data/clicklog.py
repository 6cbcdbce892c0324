"""Writing and reading the click-log layout `<root>/span-YYYYMMDD/part-NNNNN.tfrecord.gz`.

Shards are written under a hidden temporary name and renamed when complete, so ExampleGen's
`part-*.tfrecord.gz` pattern never matches a half-written file, even if the writer is killed.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import tensorflow as tf

from components import storage
from components.model.features import RAW_FEATURES
from pipeline.data.layout import SHARD_PATTERN, SPAN_DIR_RE, span_dir_name, span_folder


def list_spans(root: str | Path) -> list[int]:
    """Span numbers present under root, oldest first (folders not named span-YYYYMMDD are ignored)."""
    return sorted(int(m.group(1)) for n in storage.subdirs(str(root)) if (m := SPAN_DIR_RE.match(n)))


def to_example(event: Mapping[str, object]) -> tf.train.Example:
    """Build a tf.train.Example from a dict of raw feature values; absent/None optional features are omitted."""
    feature = {}
    for name, spec in RAW_FEATURES.items():
        value = event.get(name)
        if value is None:
            if spec.required:
                raise ValueError(f"event is missing required feature {name!r}: {dict(event)}")
            continue
        if spec.dtype == "bytes":
            data = value if isinstance(value, bytes) else str(value).encode()
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[data]))
        elif spec.dtype == "int64":
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))
        else:
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)]))
    return tf.train.Example(features=tf.train.Features(feature=feature))


class SpanWriter:
    """Streams serialized examples of one span into gzip shards of at most `shard_size` records."""

    def __init__(self, root: str | Path, day: dt.date, shard_size: int = 100_000):
        self.dir = storage.join(str(root), span_dir_name(day))
        storage.makedirs(self.dir)
        if any(fnmatch.fnmatch(n, SHARD_PATTERN) for n in storage.listdir(self.dir)):
            # Appending to a finished span would silently double its events.
            raise FileExistsError(f"{self.dir} already holds shards; remove it or write to another folder")
        self.shard_size = shard_size
        self._shard_index = 0
        self._writer: tf.io.TFRecordWriter | None = None
        self._tmp: str | None = None
        self._in_shard = 0
        self.count = 0
        self.files: list[str] = []

    def write(self, example: tf.train.Example | bytes) -> None:
        if self._writer is None:
            self._tmp = storage.join(self.dir, f".part-{self._shard_index:05d}.tfrecord.gz.tmp")
            self._writer = tf.io.TFRecordWriter(self._tmp, options="GZIP")
        # deterministic=True: a map's field order otherwise varies between processes, and so would the bytes
        # of every shard (and where a test that cuts a shard lands).
        self._writer.write(
            example if isinstance(example, bytes) else example.SerializeToString(deterministic=True)
        )
        self._in_shard += 1
        self.count += 1
        if self._in_shard >= self.shard_size:
            self._finish_shard()

    def _finish_shard(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        final = storage.join(self.dir, f"part-{self._shard_index:05d}.tfrecord.gz")
        storage.rename(self._tmp, final)
        self.files.append(final)
        self._writer, self._tmp, self._in_shard = None, None, 0
        self._shard_index += 1

    def close(self) -> None:
        self._finish_shard()

    def __enter__(self) -> SpanWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        elif self._writer is not None:  # never leave a partial shard that looks finished
            self._writer.close()
            storage.remove(self._tmp)


def read_examples(files: Iterable[str | Path]) -> Iterator[dict[str, object]]:
    """Yield each record of gzip TFRecord files as a dict of python values (tests and tooling)."""
    for f in files:
        for raw in tf.data.TFRecordDataset(str(f), compression_type="GZIP").as_numpy_iterator():
            ex = tf.train.Example.FromString(raw)
            row: dict[str, object] = {}
            for name, feat in ex.features.feature.items():
                kind = feat.WhichOneof("kind")
                values = list(getattr(feat, kind).value)
                if values:
                    v = values[0]
                    row[name] = v.decode() if isinstance(v, bytes) else v
            yield row


def span_files(root: str | Path, span: int, pattern: str = SHARD_PATTERN) -> list[str]:
    folder = storage.join(str(root), span_folder(span))
    if not storage.isdir(folder):
        return []
    return [storage.join(folder, n) for n in storage.files(folder) if fnmatch.fnmatch(n, pattern)]


def infer_schema(root: str, span: int | None, out: str, pattern: str = SHARD_PATTERN) -> int:
    """Bootstrap a schema from one span (default: the newest) with TFDV; returns the span. ValueError names
    what is missing."""
    import tensorflow_data_validation as tfdv  # TFDV's Beam stack is needed by this command only

    spans = list_spans(root)
    if not spans:
        raise ValueError(f"no span-YYYYMMDD folders under {root}")
    target = span or spans[-1]
    if not span_files(root, target, pattern):
        raise ValueError(f"span {target} has no {pattern} files under {root}")
    folder = storage.join(str(root), span_folder(target))
    stats = tfdv.generate_statistics_from_tfrecord(data_location=storage.join(folder, pattern))
    tfdv.write_schema_text(tfdv.infer_schema(stats), out)
    return target
