"""COVID-19 CT Lung and Infection Segmentation (Ma et al., Zenodo record 3757476), a portal source.

Layout after ``covid19-images fetch covid19-ct-seg`` (``source.yaml`` says which Zenodo zip
unpacks where; the folder names are those of the dataset's Kaggle mirror, whose
``metadata.csv`` in ``../shared/upstream-portal/zenodo-3757476-covid19-ct-seg/`` is the real
file this parser was written against)::

    ct_scans/coronacases_org_001.nii.gz
    ct_scans/radiopaedia_org_covid-19-pneumonia-4_85506_1-dcm.nii.gz
    lung_mask/coronacases_001.nii.gz             (and infection_mask/, lung_and_infection_mask/)
    lung_mask/radiopaedia_4_85506_1.nii.gz

Why it looks the way it does:

* One entry per CT volume; masks are not rows but ``extra`` paths of their volume.
* A volume's masks have another name than the volume (``coronacases_org_001`` ->
  ``coronacases_001``, ``radiopaedia_org_covid-19-pneumonia-4_85506_1-dcm`` ->
  ``radiopaedia_4_85506_1``): :func:`mask_stem` maps one to the other; a volume without a
  mask is still an image, and reported.
* Every case is a COVID-19 patient (the dataset's description); one volume per patient, so
  the case name is the patient id. ``.nii`` (the Kaggle mirror) and ``.nii.gz`` (Zenodo) are
  both read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import PurePosixPath

from covid19_images.core.schema import Entry
from covid19_images.sources.parsing import SourceContext

CT_DIR = "ct_scans"
MASK_DIRS = ("lung_mask", "infection_mask", "lung_and_infection_mask")
FINDING = "COVID-19"
_NIFTI = re.compile(r"^(?P<stem>.+?)\.nii(\.gz)?$")
_CORONACASES = re.compile(r"^coronacases_org_(?P<n>\d+)$")
_RADIOPAEDIA = re.compile(r"^radiopaedia_org_covid-19-pneumonia-(?P<case>\d+_\d+_\d+)-dcm$")


def mask_stem(volume_stem: str) -> str:
    """The masks' name of a volume: ``coronacases_org_001`` -> ``coronacases_001`` (see the module)."""
    if match := _CORONACASES.match(volume_stem):
        return f"coronacases_{match.group('n')}"
    if match := _RADIOPAEDIA.match(volume_stem):
        return f"radiopaedia_{match.group('case')}"
    return volume_stem


def parse(ctx: SourceContext) -> Iterator[Entry]:
    masks: dict[tuple[str, str], str] = {}
    for name in ctx.files:
        path = PurePosixPath(name)
        match = _NIFTI.match(path.name)
        if match and len(path.parts) == 2 and path.parts[0] in MASK_DIRS:
            masks[(path.parts[0], match.group("stem"))] = name
    for name in ctx.files:
        path = PurePosixPath(name)
        match = _NIFTI.match(path.name)
        if not (match and len(path.parts) == 2 and path.parts[0] == CT_DIR):
            continue
        stem = match.group("stem")
        found = {kind: masks[(kind, mask_stem(stem))] for kind in MASK_DIRS if (kind, mask_stem(stem)) in masks}
        if not found:
            ctx.report(f"no mask named {mask_stem(stem)} in {', '.join(MASK_DIRS)}", path=name)
        yield Entry(
            path=name,
            modality="ct",
            finding=FINDING,
            patient_id=stem,
            extra={"source_case": "coronacases" if stem.startswith("coronacases") else "radiopaedia", **found},
        )
