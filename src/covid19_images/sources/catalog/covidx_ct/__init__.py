"""COVIDx CT-3A (Kaggle ``hgunraj/covidxct``), a portal source: CT slices re-cut from other sets.

Written against the real ``splits/v3/test_COVIDx_CT-3A.txt`` and ``val_COVIDx_CT-3A.txt`` (first
2,000 lines each), ``metadata.csv`` and ``dataset_construction/metadata/*.csv`` of
haydengunraj/COVIDNet-CT in ``../shared/upstream-portal/covidx-ct/``. Layout once fetched (the
folder name as public Kaggle notebooks read the mounted dataset: ``/kaggle/input/covidxct/3A_images/``
beside ``val_COVIDx_CT-3A.txt``; version 2's were ``2A_images`` and ``*_COVIDx_CT-2A.txt``)::

    3A_images/NCP_341_1834_0022.png
    train_COVIDx_CT-3A.txt  val_COVIDx_CT-3A.txt  test_COVIDx_CT-3A.txt

Why it looks the way it does:

* The list files are the index: ``filename class xmin ymin xmax ymax`` without a header (class 0
  normal, 1 pneumonia, 2 COVID-19; the box is COVID-Net's body crop, kept in ``extra.crop``). The
  list names the official split. A listed file absent from the download is reported; an image
  no list names (3B's extra training slices) is left out, counted in one problem.
* The patient is in the file name, whose form says the source: ``NCP_341_1834_0022`` (CNCB:
  class_patient_scan_slice), ``COVIDCTMD-P002-IM0025``, ``coronacases_010-0075``,
  ``radiopaedia_4_85506_1-0004``, ``volume-covid19-A-0573_ct-0010`` (TCIA; some ``_1_ct-``),
  ``LIDC-IDRI-0273-<series>-0032``, COVID-CTset's ``137covid_patient76_SR_2_IM00014``,
  ``STOIC-10011-0103`` and ``study_0255-0017``. The last two are the forms COVIDNet-CT's own
  builders write (``dataset_construction/stoic.py``: ``'STOIC-{}-{:04d}.png'.format(pid, i)``;
  ``mosmed.py``: ``pid + '-{:04d}.png'.format(idx)``, read at haydengunraj/COVIDNet-CT
  44ceb608 and 7855dfa3). The STOIC slice number counts in the *reversed* ``.mha``
  (``load_mha_volume(mha_file)[::-1]``): slice ``k`` is ``n - 1 - k`` in the file's order;
  MosMed's is the NIfTI's third index (``np.rollaxis(volume, 2, 0)``).
* Where the slice comes from a source the catalog holds, ``extra.same_as`` names that source's
  volume or DICOM file (an ``identity`` edge): the slice joins its volume's duplicate group, so a
  COVIDx CT slice and the volume it was cut from never land in different splits, whichever sets a
  root combines. ``extra.source_frame`` is the slice number the name gives.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import PurePosixPath

from covid19_images.core.schema import Entry
from covid19_images.sources.parsing import SourceContext

IMAGES = "3A_images"
LISTS = {"train": "train_COVIDx_CT-3A.txt", "val": "val_COVIDx_CT-3A.txt", "test": "test_COVIDx_CT-3A.txt"}
CLASSES = {"0": ("Normal", "normal"), "1": ("Pneumonia", "pneumonia"), "2": ("COVID-19", "covid-19")}
MAX_LIST_BYTES = 256 * 1024 * 1024
CTMD_FOLDERS = {"P": "COVID-19 subjects", "cap": "Cap subjects", "normal": "Normal subjects"}

#: file-name form -> (patient id, same_as target or "", slice number)
_FORMS: list[tuple[re.Pattern[str], object]] = [
    (re.compile(r"^(?P<cls>NCP|CP|Normal)_(?P<p>\d+)_(?P<scan>\d+)_(?P<k>\d+)$"),
     lambda m: (f"{m['cls']}_{m['p']}", "", m["k"])),
    (re.compile(r"^COVIDCTMD-(?P<kind>P|cap|normal)(?P<n>\d+)-(?P<f>.+)$"),
     lambda m: (f"{m['kind']}{m['n']}", f"covid-ct-md:{CTMD_FOLDERS[m['kind']]}/{m['kind']}{m['n']}/{m['f']}.dcm", "")),
    (re.compile(r"^coronacases_(?P<n>\d+)-(?P<k>\d+)$"),
     lambda m: (f"coronacases_{m['n']}", f"covid19-ct-seg:coronacases_org_{m['n']}.nii.gz", m["k"])),
    (re.compile(r"^radiopaedia_(?P<case>\d+_\d+_\d+)-(?P<k>\d+)$"),
     lambda m: (f"radiopaedia_{m['case']}",
                f"covid19-ct-seg:radiopaedia_org_covid-19-pneumonia-{m['case']}-dcm.nii.gz", m["k"])),
    (re.compile(r"^STOIC-(?P<p>\d+)-(?P<k>\d+)$"),
     lambda m: (f"STOIC-{m['p']}", f"stoic2021:{int(m['p'])}.mha", m["k"])),
    (re.compile(r"^(?P<s>study_\d{4})-(?P<k>\d+)$"), lambda m: (m["s"], f"mosmeddata:{m['s']}.nii.gz", m["k"])),
    (re.compile(r"^(?P<p>volume-covid19-A-\d+)(?:_\d+)?_ct-(?P<k>\d+)$"), lambda m: (m["p"], "", m["k"])),
    (re.compile(r"^(?P<p>LIDC-IDRI-\d+)-(?P<series>[\d.]+)-(?P<k>\d+)$"), lambda m: (m["p"], "", m["k"])),
    (re.compile(r"^(?P<p>\d*(?:normal|covid)\w*?_patient\d+)_"), lambda m: (m["p"], "", "")),
]  # fmt: skip


def identify(stem: str) -> tuple[str, str, str]:
    """``(patient id, same_as target or "", slice number or "")`` of a COVIDx CT file stem."""
    for pattern, build in _FORMS:
        if match := pattern.match(stem):
            return build(match)  # type: ignore[operator]
    return re.sub(r"-\d+$", "", stem), "", ""


def read_list(ctx: SourceContext, name: str) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of a list file; malformed lines are reported and skipped."""
    if (ctx.directory / name).stat().st_size > MAX_LIST_BYTES:
        ctx.report("larger than any COVIDx CT list; not read", path=name, level="error")
        return
    with open(ctx.directory / name, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) not in (2, 6) or fields[1] not in CLASSES:
                ctx.report(
                    f"not `filename class [xmin ymin xmax ymax]`: {line.strip()[:80]!r}", path=name, row=str(number)
                )
                continue
            yield number, fields


def parse(ctx: SourceContext) -> Iterator[Entry]:
    images = {PurePosixPath(f).name: f for f in ctx.files if f.startswith(f"{IMAGES}/")}
    listed: set[str] = set()
    for split, name in LISTS.items():
        if name not in ctx.files:
            ctx.report(f"no {name}; its {split} slices are not indexed", path=name)
            continue
        for number, fields in read_list(ctx, name):
            file = fields[0]
            if file not in images:
                ctx.report(f"{file} is listed but not in {IMAGES}/", path=name, row=str(number))
                continue
            if file in listed:
                ctx.report(f"{file} is listed twice; the first listing is kept", path=name, row=str(number))
                continue
            listed.add(file)
            finding, label = CLASSES[fields[1]]
            patient, same_as, frame = identify(PurePosixPath(file).stem)
            extra: dict[str, object] = {"covidx_name": file}
            if len(fields) == 6:
                extra["crop"] = [int(float(v)) for v in fields[2:]]
            if same_as:
                extra["same_as"] = [same_as]
            if frame:
                # as the name gives it (for STOIC: counted from the .mha's last slice, see above)
                extra["source_frame"] = int(frame)
            yield Entry(
                path=images[file],
                modality="ct",
                finding=finding,
                label=label,
                view="axial",
                patient_id=patient,
                official_split=split,
                row=f"{name}:{number}",
                extra=extra,
            )
    unlisted = len(set(images) - listed)
    if unlisted:
        ctx.report(f"{unlisted} images in {IMAGES}/ are in no CT-3A list (3B-only slices?); not indexed", path=IMAGES)
