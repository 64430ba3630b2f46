"""TFRecord files ``DIR/<split>-NNNNN-of-MMMMM.tfrecord`` of ``tf.train.Example`` records.

Each record holds the encoded image (``image/encoded``, the same bytes the other formats
store), ``image/format``, ``image/class/label`` (int64 index into ``export.json``'s
classes), ``image/class/text``, ``image/id`` and the main manifest columns as bytes
features. Several files per split (``shard_size`` records each) let ``tf.distribute``
auto-shard by FILE, so each worker reads whole files instead of every record.

TensorFlow is imported through the loaders' importer (``loaders._frameworks``: the
ImportError names the extra; any order with torch works); TFRecord framing has no timestamp,
so the bytes are deterministic.
"""

from __future__ import annotations

from covid19_images.export.common import ExportRequest, chunks, iter_payloads
from covid19_images.export.schema import TFRECORD_COLUMNS
from covid19_images.loaders._select import Selection

#: manifest columns copied into every record as ``meta/<column>`` bytes features (declared with the schema)
COLUMNS = TFRECORD_COLUMNS


def tfrecord_name(split: str, number: int, total: int) -> str:
    return f"{split}-{number:05d}-of-{total:05d}.tfrecord"


def write(request: ExportRequest, selection: Selection) -> tuple[list[str], dict]:
    """Write the record files; return ``<file>#<record>`` per item and per split its files."""
    from covid19_images.loaders._frameworks import import_tensorflow

    tf = import_tensorflow()

    def text(value: object) -> object:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(value).encode("utf-8")]))

    def integer(value: int) -> object:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))

    items = selection.items
    payloads = iter_payloads(items, request.image_size, "tfrecord")
    paths: list[str] = []
    shards: dict[str, list[dict]] = {}
    for split in dict.fromkeys(items["split"].astype(str)):
        blocks = chunks(int((items["split"] == split).sum()), request.shard_size)
        shards[split] = []
        for number, block in enumerate(blocks):
            name = tfrecord_name(split, number, len(blocks))
            with tf.io.TFRecordWriter(str(request.out / name)) as writer:
                for position, _ in enumerate(block):
                    key, row, data = next(payloads)
                    feature = {
                        "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[data.data])),
                        "image/format": text(data.ext),
                        "image/class/label": integer(int(row["label_index"])),
                        "image/class/text": text(row["label"]),
                        "image/id": text(row["image_id"]),
                        "image/key": text(key),
                        "image/frame": integer(int(row["frame"])),
                    }
                    feature.update({f"meta/{column}": text(row[column]) for column in COLUMNS})
                    example = tf.train.Example(features=tf.train.Features(feature=feature))
                    writer.write(example.SerializeToString(deterministic=True))
                    paths.append(f"{name}#{position}")
            shards[split].append({"file": name, "count": len(block)})
    return paths, shards
