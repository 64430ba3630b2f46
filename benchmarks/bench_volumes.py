"""A volumes epoch (``load_covid_ct(volumes=True)``) on MetaImage and on DICOM, against the plain loops.

Data: real CT pixels from ``../shared/upstream/coyotespike-covid-19-pos-case`` (the 18 axial 512 x 512
slices), stacked with +-10 HU noise into ``--slices``-slice volumes, written as STOIC's layout
(``data/mha/<id>.mha``, compressed MetaImage, with a ``metadata/reference.csv``) and as COVID-CT-MD's
(``COVID-19 subjects/P00n/IM0001.dcm ...``, one DICOM file per slice, names not in z order). Both are
placed in a data root as fetched portal sources (lock + marker, as ``mark_miniature_fetched`` does)
and synced offline. Then, in alternating rounds (the order flips every round):

* MetaImage: one torch epoch of ``load_covid_ct("torch", volumes=True, sources=["stoic2021"])``
  against ``sitk.GetArrayFromImage(sitk.ReadImage(path)).astype(float32)`` per volume;
* DICOM: one epoch of ``sources=["covid-ct-md"]`` against a pydicom loop (read every file, sort by
  ImagePositionPatient z, apply Rescale Slope/Intercept, stack).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_volumes.py --volumes 4 --slices 64 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parents[1]
SHARED = PROJECT.parent / "shared" / "upstream"
POS_CASE = SHARED / "coyotespike-covid-19-pos-case" / "COVID-19-pos-case"


def real_slices() -> list[tuple[float, np.ndarray, object]]:
    import pydicom

    found = []
    for path in sorted(POS_CASE.iterdir()):
        ds = pydicom.dcmread(path)
        if (ds.Rows, ds.Columns) == (512, 512):
            found.append((float(ds.ImagePositionPatient[2]), ds.pixel_array.astype(np.int16), ds))
    return sorted(found, key=lambda item: item[0])


def make_volume(slices: list, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    planes = [slices[k % len(slices)][1] for k in range(count)]
    return (np.stack(planes) + rng.normal(0, 10, (count, 512, 512))).astype(np.int16)


def write_sources(folder: Path, volumes: int, count: int) -> None:
    import pydicom
    import SimpleITK as sitk
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    slices = real_slices()
    template = slices[0][2]
    stoic = folder / "stoic2021"
    (stoic / "data/mha").mkdir(parents=True)
    (stoic / "metadata").mkdir()
    (stoic / "metadata/reference.csv").write_text(
        "PatientID,probCOVID,probSevere\n" + "".join(f"{n + 1},1,0\n" for n in range(volumes))
    )
    md = folder / "covid-ct-md"
    for n in range(volumes):
        data = make_volume(slices, count, n)
        image = sitk.GetImageFromArray(data)
        image.SetSpacing((0.7, 0.7, 1.25))
        sitk.WriteImage(image, str(stoic / f"data/mha/{n + 1}.mha"), useCompression=True)
        series, study = generate_uid(), generate_uid()
        for k in range(count):
            ds = pydicom.Dataset()
            ds.file_meta = pydicom.dataset.FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.file_meta.MediaStorageSOPClassUID = template.SOPClassUID
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
            ds.SOPClassUID = template.SOPClassUID
            ds.Modality, ds.PatientID = "CT", f"P{n + 1:03d}"
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.InstanceNumber = study, series, k + 1
            ds.ImageOrientationPatient, ds.ImagePositionPatient = [1, 0, 0, 0, 1, 0], [0, 0, -1.25 * k]
            ds.PixelSpacing, ds.SliceThickness, ds.SliceLocation = [0.7, 0.7], 1.25, -1.25 * k
            ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
            ds.Rows = ds.Columns = 512
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
            ds.PixelData = (data[k].astype(np.int32) + 1024).astype(np.int16).tobytes()
            target = md / f"COVID-19 subjects/P{n + 1:03d}/IM{(k * 7) % count + 1:04d}.dcm"  # names not in z order
            target.parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(target, enforce_file_format=True)


def placed_root(base: Path, volumes: int, count: int) -> Path:
    import yaml

    from covid19_images.sources.portal.http import file_hashes
    from covid19_images.sources.portal.lock import LockEntry, PortalLock, write_lock
    from covid19_images.sources.portal.state import FetchState, write_state
    from covid19_images.sources.registry import load_registry
    from covid19_images.sync.run import sync

    root = base / "root"
    root.mkdir()
    (root / "sources.yaml").write_text(yaml.safe_dump({"sources": ["stoic2021", "covid-ct-md"]}))
    for args in (("init", "-q", "-b", "main"), ("add", "sources.yaml")):
        subprocess.run(["git", *args], cwd=root, check=True)
    subprocess.run(
        ["git", "-c", "user.name=b", "-c", "user.email=b@x.invalid", "commit", "-qm", "i"], cwd=root, check=True
    )
    write_sources(root / "datasets", volumes, count)
    registry = load_registry(root)
    for name in ("stoic2021", "covid-ct-md"):  # as a completed fetch leaves them (lock + marker)
        spec, folder = registry[name], root / "datasets" / name
        entries = []
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            got = file_hashes(path)
            entries.append(LockEntry(path.relative_to(folder).as_posix(), got.size, "", got.sha256, "bench"))
        digest = write_lock(root, PortalLock(spec.name, spec.portal, spec.dataset, spec.version, tuple(entries)))
        write_state(folder, FetchState(digest, {e.path: {"sha256": e.sha256, "files": [e.path]} for e in entries}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = sync(root, offline=True, progress=False)
    assert not report.failed, report.summary()
    return root


def ours(root: Path, source: str) -> int:
    from covid19_images import load_covid_ct

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = load_covid_ct("torch", root=root, sources=[source], split=None, volumes=True, deduplicate=False)
    voxels = 0
    for index in range(len(ds)):
        volume, _label = ds[index]
        voxels += int(volume.numel())
    return voxels


def plain_mha(root: Path) -> int:
    import SimpleITK as sitk

    voxels = 0
    for path in sorted((root / "datasets/stoic2021/data/mha").glob("*.mha")):
        voxels += sitk.GetArrayFromImage(sitk.ReadImage(str(path))).astype(np.float32).size
    return voxels


def plain_dicom(root: Path) -> int:
    import pydicom

    voxels = 0
    for folder in sorted((root / "datasets/covid-ct-md/COVID-19 subjects").iterdir()):
        slices = [pydicom.dcmread(p) for p in folder.glob("*.dcm")]
        slices.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
        volume = np.stack([ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
                           for ds in slices])  # fmt: skip
        voxels += volume.size
    return voxels


def timed(run) -> tuple[float, float, int]:
    wall, cpu = time.perf_counter(), time.process_time()
    voxels = run()
    return time.perf_counter() - wall, time.process_time() - cpu, voxels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--volumes", type=int, default=4)
    parser.add_argument("--slices", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        root = placed_root(Path(folder), args.volumes, args.slices)
        cases = {
            "metaimage": (lambda: ours(root, "stoic2021"), lambda: plain_mha(root)),
            "dicom": (lambda: ours(root, "covid-ct-md"), lambda: plain_dicom(root)),
        }
        for mine, plain in cases.values():  # warm-up, not timed: imports (torch, SimpleITK), the page cache
            mine(), plain()
        results: dict[str, dict[str, list]] = {c: {"ours": [], "plain": []} for c in cases}
        for number in range(args.rounds):
            for case, (mine, plain) in cases.items():
                order = [("ours", mine), ("plain", plain)]
                for name, run in order if number % 2 == 0 else order[::-1]:
                    results[case][name].append(timed(run))
    summary = {"load_average_start": load, "load_average_end": os.getloadavg()[0], "rounds": args.rounds}
    for case, runs in results.items():
        best_ours = min(t[0] for t in runs["ours"])
        best_plain = min(t[0] for t in runs["plain"])
        cpu_ours = min(t[1] for t in runs["ours"])
        cpu_plain = min(t[1] for t in runs["plain"])
        voxels = runs["ours"][0][2]
        assert voxels == runs["plain"][0][2], (case, voxels, runs["plain"][0][2])
        summary[case] = {
            "volumes": args.volumes,
            "slices": args.slices,
            "ours_s_best": round(best_ours, 3),
            "plain_s_best": round(best_plain, 3),
            "ratio_best": round(best_plain / best_ours, 2),
            "ratio_cpu": round(cpu_plain / cpu_ours, 2),
            "per_round_ratio": [round(p[0] / o[0], 2) for o, p in zip(runs["ours"], runs["plain"], strict=True)],
        }
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
