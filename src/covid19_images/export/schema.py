"""What each export's records hold, written where its readers look: ``export.json`` (``schema``),
``DATASHEET.md`` and the README.

The numbers of a manifest row are typed in the records (``width``/``height``/``frames`` integers,
``age`` a float, null when unknown) instead of manifest.csv's text, and ``width``/``height`` are
those of the exported image (``original_width``/``original_height`` keep the source file's).
"""

from __future__ import annotations

import math
from typing import Any

from covid19_images.core.schema import MANIFEST_COLUMNS

#: manifest columns every TFRecord record holds as ``meta/<column>`` bytes features
TFRECORD_COLUMNS = (
    "source",
    "source_commit",
    "path",
    "modality",
    "view",
    "label_detail",
    "patient_id",
    "sex",
    "age",
    "license",
    "split_group",
    "split",
    "sha256",
)

INTEGER_COLUMNS = ("width", "height", "frames")
FLOAT_COLUMNS = ("age",)


def _integer(value: Any) -> int | None:
    try:
        number = float(str(value))
    except ValueError:
        return None
    return int(number) if math.isfinite(number) else None


def _float(value: Any) -> float | None:
    number = _integer(value)  # validates and rejects NaN / inf
    return float(str(value)) if number is not None else None


def typed_record(row: Any, image_size: tuple[int, int] | None) -> dict[str, Any]:
    """A manifest row for a record: text columns as text, numbers typed, sizes of the exported image."""
    record: dict[str, Any] = {column: str(row[column]) for column in MANIFEST_COLUMNS}
    for column in INTEGER_COLUMNS:
        record[column] = _integer(row[column])
    for column in FLOAT_COLUMNS:
        record[column] = _float(row[column])
    record["original_width"], record["original_height"] = record["width"], record["height"]
    if image_size is not None:
        record["height"], record["width"] = int(image_size[0]), int(image_size[1])
    record["frame"] = int(row["frame"])
    record["label_index"] = int(row["label_index"])
    return record


def record_fields() -> dict[str, str]:
    """Every field of :func:`typed_record` and its type, in order."""
    fields = {column: "string" for column in MANIFEST_COLUMNS}
    fields.update({column: "int64 (null if unknown)" for column in INTEGER_COLUMNS})
    fields.update({column: "float64 (null if unknown)" for column in FLOAT_COLUMNS})
    fields["width"] = fields["height"] = "int64: the exported image's size in pixels"
    fields.update(
        original_width="int64 (null if unknown): the source file's width",
        original_height="int64 (null if unknown): the source file's height",
        frame="int64: the frame (slice) of the source file this image is",
        label_index="int64: position of the label in export.json's classes",
    )
    return fields


def tfrecord_features() -> dict[str, dict[str, str]]:
    """The ``tf.train.Example`` features of every TFRecord record: each a scalar ``FixedLenFeature``."""
    features = {
        "image/encoded": ("bytes", "the image file: PNG when resized or not JPEG/PNG, else the original bytes"),
        "image/format": ("bytes", "its format, 'png' or 'jpg'"),
        "image/class/label": ("int64", "position of the label in export.json's classes"),
        "image/class/text": ("bytes", "the label"),
        "image/id": ("bytes", "manifest image_id"),
        "image/key": ("bytes", "the sample key (image_id, with _fNNNNN for a frame)"),
        "image/frame": ("int64", "frame (slice) of the source file"),
    }
    features.update({f"meta/{column}": ("bytes", f"manifest column {column}, as text") for column in TFRECORD_COLUMNS})
    return {name: {"dtype": dtype, "shape": "[]", "description": text} for name, (dtype, text) in features.items()}


#: how to read the records back with TensorFlow, from export.json alone
TFRECORD_PARSE = (
    "spec = {name: tf.io.FixedLenFeature([], tf.int64 if f['dtype'] == 'int64' else tf.string)\n"
    "        for name, f in json.load(open('export.json'))['schema']['features'].items()}\n"
    "example = tf.io.parse_single_example(record, spec)\n"
    "image = tf.io.decode_image(example['image/encoded'], channels=3, expand_animations=False)"
)


def record_schema(fmt: str) -> dict[str, Any] | None:
    """export.json's ``schema`` for one format (None where the files are plain images)."""
    if fmt == "tfrecord":
        return {"kind": "tf.train.Example", "features": tfrecord_features(), "parse": TFRECORD_PARSE}
    if fmt == "webdataset":
        return {
            "kind": "webdataset sample: <key>.png|jpg (image), <key>.cls (label index, ASCII), <key>.json",
            "json": record_fields(),
        }
    if fmt == "hf":
        fields = {("label_name" if k == "label" else k): v for k, v in record_fields().items() if k != "label_index"}
        return {"kind": "Parquet (datasets Features)", "image": "Image", "label": "ClassLabel", "columns": fields}
    return None


def schema_markdown(fmt: str) -> list[str]:
    """The schema as a datasheet section (Markdown lines); empty for plain image folders."""
    schema = record_schema(fmt)
    if schema is None:
        return []
    out = ["## Record schema", "", f"{schema['kind']}; also in `export.json` (`schema`).", ""]
    if fmt == "tfrecord":
        out += ["| feature | dtype | shape | meaning |", "|---|---|---|---|"]
        out += [f"| `{k}` | {f['dtype']} | {f['shape']} | {f['description']} |" for k, f in schema["features"].items()]
        out += ["", "Read with TensorFlow:", "", "```python", TFRECORD_PARSE, "```"]
    else:
        fields = schema["json"] if fmt == "webdataset" else schema["columns"]
        out += ["| field | type |", "|---|---|"] + [f"| `{k}` | {t} |" for k, t in fields.items()]
    return [*out, ""]


__all__ = ["record_fields", "record_schema", "schema_markdown", "tfrecord_features", "typed_record"]
