"""A Hugging Face datasets repository: ``data/<split>-NNNNN-of-MMMMM.parquet`` + ``README.md``.

Each Parquet file has an ``image`` column stored as the ``Image`` feature does (struct of
``bytes`` and ``path``), ``label`` as a ``ClassLabel`` (int64 + names) and every manifest
column (``label`` renamed ``label_name``) plus ``frame``, typed as in
:mod:`covid19_images.export.schema` (``width``/``height`` the exported image's, integers;
``age`` a float; the source file's size in ``original_width``/``original_height``). The
features are written into the Parquet schema metadata (key ``huggingface``) *and* into the
card's ``dataset_info``, so ``datasets.load_dataset(DIR)`` reads the ClassLabel names and
``push_to_hub`` publishes the folder as it is; each split in the card states
``num_examples`` and ``num_bytes`` (the uncompressed size of its Parquet data), which
``datasets`` requires of a valid card. The card's ``configs`` maps each split to its files
explicitly; its header also carries the licences (``license: other`` +
``license_details``), the task category and every source's citation (``source_citations``:
the Hub has no standard key).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from covid19_images.core.schema import MANIFEST_COLUMNS
from covid19_images.export.common import ExportRequest, chunks, iter_payloads
from covid19_images.export.schema import FLOAT_COLUMNS, INTEGER_COLUMNS, typed_record
from covid19_images.loaders._select import Selection

#: manifest columns as Parquet columns (``label`` becomes the ClassLabel; its text is ``label_name``)
TEXT_COLUMNS = tuple("label_name" if c == "label" else c for c in MANIFEST_COLUMNS)
DATA_DIR = "data"


def column_types() -> dict[str, str]:
    """Every column after ``image`` and ``label``, with its ``datasets`` dtype."""
    types = {column: "string" for column in TEXT_COLUMNS}
    types.update({column: "int64" for column in INTEGER_COLUMNS})
    types.update({column: "float64" for column in FLOAT_COLUMNS})
    types.update(original_width="int64", original_height="int64", frame="int64")
    return types


def features(classes: tuple[str, ...]) -> Any:
    from datasets import ClassLabel, Features, Image, Value

    spec: dict[str, Any] = {"image": Image(), "label": ClassLabel(names=list(classes))}
    spec.update({column: Value(dtype) for column, dtype in column_types().items()})
    return Features(spec)


def split_bytes(out: Path, shards: dict) -> dict[str, int]:
    """Per split, the uncompressed size of its Parquet data (the card's ``num_bytes``)."""
    import pyarrow.parquet as pq

    sizes = {}
    for split, files in shards.items():
        total = 0
        for entry in files:
            meta = pq.ParquetFile(out / entry["file"]).metadata
            total += sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        sizes[split] = total
    return sizes


def parquet_name(split: str, number: int, total: int) -> str:
    return f"{DATA_DIR}/{split}-{number:05d}-of-{total:05d}.parquet"


def write(request: ExportRequest, selection: Selection) -> tuple[list[str], dict]:
    """Write the Parquet files; return ``<file>#<row>`` per item and per split its files."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = features(selection.classes).arrow_schema
    items = selection.items
    payloads = iter_payloads(items, request.image_size, "hf")
    paths: list[str] = []
    shards: dict[str, list[dict]] = {}
    (request.out / DATA_DIR).mkdir(parents=True, exist_ok=True)
    for split in dict.fromkeys(items["split"].astype(str)):
        blocks = chunks(int((items["split"] == split).sum()), request.shard_size)
        shards[split] = []
        for number, block in enumerate(blocks):
            name = parquet_name(split, number, len(blocks))
            rows = []
            for position in block:
                key, row, data = next(payloads)
                record: dict[str, Any] = {"image": {"bytes": data.data, "path": f"{key}.{data.ext}"}}
                record["label"] = int(row["label_index"])
                typed = typed_record(row, request.image_size)
                record.update(
                    {column: typed["label" if column == "label_name" else column] for column in column_types()}
                )
                rows.append(record)
                paths.append(f"{name}#{position}")
            table = pa.Table.from_pylist(rows, schema=schema)
            # fixed writer settings: same rows, same bytes (no statistics timestamps exist in Parquet)
            pq.write_table(table, request.out / name, compression="snappy", row_group_size=256)
            shards[split].append({"file": name, "count": len(block)})
    return paths, shards


#: custom card key: the Hub's metadata spec (hub-docs datasetcard.md) and huggingface_hub's
#: ``DatasetCardData`` have no citation field (citations are a body section in the Hub's template),
#: so the sources' citations are kept under this clearly named extra key *and* in the body
CITATIONS_KEY = "source_citations"


def card_header(
    classes: tuple[str, ...],
    shards: dict,
    licences: list[str],
    count: int,
    modality: str,
    citations: dict[str, str] | None = None,
    num_bytes: dict[str, int] | None = None,
) -> dict:
    """The YAML header of the dataset card (the Hub reads licence, task, size, configs, features).

    ``citations`` maps every exported source to its registry citation ("" when it has none);
    it becomes ``source_citations``, a list of ``{source, citation}`` in source order.
    ``num_bytes`` maps each split to its size (:func:`split_bytes`).
    """
    num_bytes = num_bytes or {}
    sizes = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"))
    size = next((name for limit, name in sizes if count < limit), "n>1M")
    return {
        "pretty_name": f"covid19-images ({modality})",
        "license": "other",
        "license_name": "per-image",
        "license_details": "Each image keeps its upstream licence (column `license`): "
        + ", ".join(licences)
        + ". See DATASHEET.md for the attribution list.",
        "task_categories": ["image-classification"],
        "tags": ["medical", "covid-19", modality],
        "size_categories": [size],
        CITATIONS_KEY: [{"source": name, "citation": text} for name, text in sorted((citations or {}).items())],
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": split, "path": f"{DATA_DIR}/{split}-*.parquet"} for split in shards],
            }
        ],
        "dataset_info": {
            "features": [
                {"name": "image", "dtype": "image"},
                {"name": "label", "dtype": {"class_label": {"names": {str(i): c for i, c in enumerate(classes)}}}},
                *({"name": c, "dtype": dtype} for c, dtype in column_types().items()),
            ],
            "splits": [
                {
                    "name": split,
                    "num_bytes": int(num_bytes.get(split, 0)),
                    "num_examples": sum(s["count"] for s in files),
                }
                for split, files in shards.items()
            ],
            "dataset_size": int(sum(num_bytes.values())),
        },
    }
