"""``wsol data fetch``: the public datasets, through the zoo's downloader (cache, mirror, checks).

* ``cub``: ``CUB_200_2011.tgz`` from CaltechDATA (md5 published), cached as
  ``<cache>/data/CUB_200_2011.tgz``, unpacked safely into ``ROOT`` (``ROOT/CUB_200_2011/``), then
  ``data check --format cub`` on it.
* ``wsolevaluation-metadata``: the ``metadata/`` folder of clovaai/wsolevaluation at the pinned
  commit :data:`WSOLEVAL_COMMIT`, file by file from raw.githubusercontent.com, each checked against
  the sha256 in :data:`WSOLEVAL_SHA256` (ILSVRC/train: unknown, recorded on first download), cached
  under ``<cache>/data/wsolevaluation-<commit>/`` and copied to ``ROOT/<dataset>/<split>/``. A
  mirror serves ``<mirror>/metadata/<dataset>/<split>/<file>`` (a clone of the repository is one).
* ``imagenet``: licence-bound, no download; :func:`imagenet_instructions` prints the manual steps.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from wsol.errors import UserError
from wsol.zoo.download import HashStore, Remote, cache_dir, extract_all, fetch

__all__ = [
    "CUB",
    "WSOLEVAL_COMMIT",
    "WSOLEVAL_SHA256",
    "WSOLEVAL_ILSVRC_TRAIN",
    "FETCHABLE",
    "fetch_cub",
    "fetch_wsolevaluation_metadata",
    "imagenet_instructions",
    "wsoleval_remote",
]

FETCHABLE = ("cub", "wsolevaluation-metadata", "imagenet")

CUB = Remote(
    url="https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz?download=1",
    filename="CUB_200_2011.tgz",
    md5="97eceeb196236b17998738112f37df78",
    size=1_150_585_339,
)
CUB_FOLDER = "CUB_200_2011"

WSOLEVAL_COMMIT = "96f4b88679af41f005824661f47e6fe3628af2aa"
WSOLEVAL_RAW = "https://raw.githubusercontent.com/clovaai/wsolevaluation/{commit}/metadata/{path}"
# sha256 and size of every metadata file at WSOLEVAL_COMMIT (from byte-identical copies)
WSOLEVAL_SHA256: dict[str, tuple[str, int]] = {
    "CUB/test/class_labels.txt": ("0e65f035658267b2c7eec0d289048bb822e4a5f9a244b034c127ea7fb1367d7d", 326010),
    "CUB/test/image_ids.txt": ("f654e4676187fc322ad409487faa3568bffa751438198011692e7ff01be574ca", 305941),
    "CUB/test/image_sizes.txt": ("96c4e79810545b237b2a79f4623a198ce6effb290fba01790b5587b464abd33b", 352293),
    "CUB/test/localization.txt": ("85d2bd87f1bfb1641ae42f36df070c34b4755f260267326d2a2d19e65a9acf00", 391543),
    "CUB/train/class_labels.txt": ("4f19c23e9fdf3cfae8027a9ea8a1cec1b4ecc6a3cb6cf0fe12723c48cde82b30", 337398),
    "CUB/train/image_ids.txt": ("c04cbe44e79ef2129afac49a15eb51b8f050cdef140cef4cf908cef823000b66", 316722),
    "CUB/train/image_sizes.txt": ("307a9ed88a011e41b16153ed9745f4cf41054fdfb834f412f104873a42a959cd", 364674),
    "CUB/train/localization.txt": ("672f41482883e8a23e9b1406b8e75aec7c74c18da39b024724c804dba3c480fd", 405212),
    "CUB/val/class_labels.txt": ("36791366bc002b82df029b8d84500d731ecc4a5dea603250f134e927d7df5748", 39944),
    "CUB/val/image_ids.txt": ("455f26689daf2219d42208fba21be12da219c8724eab38482210c4ac2bc57c02", 36496),
    "CUB/val/image_sizes.txt": ("b0d5495ba5af9f7b1e34753cc8548be5debb267a3d7803a5408a3bc4d173ef63", 44555),
    "CUB/val/localization.txt": ("08ff9afa478b3a7e29a15c173e11927c9cb1867b58ae8a541df69a4c0c830ab5", 51919),
    "ILSVRC/test/class_labels.txt": ("a226044e3e00900291053ecb8e68640385a196c5521c793d242df9e084e898b6", 1844499),
    "ILSVRC/test/image_ids.txt": ("68bed6c35194a126dba32ad15f2f19596a5f1a3923ffc4ac301402d93e045583", 1649999),
    "ILSVRC/test/image_sizes.txt": ("dde3957c4bf3bdab41ec759386c6ebaa8bed2c1790891ec3465e3a235ed63f3e", 2051318),
    "ILSVRC/test/localization.txt": ("c4a9929837b61e9c2a03524f5b963945782ddc9930c4f8ea764cc10004c5ee62", 3829081),
    "ILSVRC/val/class_labels.txt": ("316209e92831b0dd910432afe74c55f2fb33ed72ade1378d3d0954df325ea51e", 197799),
    "ILSVRC/val/image_ids.txt": ("bcd13383b7fdaa8aa9cfd02228b398802cf64b20f6efe13aa4b0696b9431d993", 158899),
    "ILSVRC/val/image_sizes.txt": ("4c82c4c1e14bc7f6a1a8a1fe7ab91df2ec369318b39a8b70618d6bd041cc7410", 238898),
    "ILSVRC/val/localization.txt": ("4d01d6e9eab27ec860092a43f5b7480f10aadbf21234bd01ae419e9c8181ea3f", 566431),
    "OpenImages/test/class_labels.txt": ("38d9c771b4031770c5e366ff2c50650ec130ce24ceb4b75be96e494f89a1f959", 176599),
    "OpenImages/test/image_ids.txt": ("7f279c569eb501986ecd98917ba6f116524fe744f84684ad16b3a01087c00bf8", 162099),
    "OpenImages/test/image_sizes.txt": ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", 0),
    "OpenImages/test/localization.txt": ("9d1f0bad885884f7e79913b00c5b984fc8d532ed80886bd5e72d37e3274aeb55", 819834),
    "OpenImages/train/class_labels.txt": ("963b8b21ffdbabc145817f92183371fcdbe9adf3636edde878e45186c0ac9132", 1082972),
    "OpenImages/train/image_ids.txt": ("12c206be5ec47a8e94dbc9cb62a5e0325507335c4daa199b88b4792e4e59d084", 996515),
    "OpenImages/train/image_sizes.txt": ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", 0),
    "OpenImages/train/localization.txt": ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", 0),
    "OpenImages/val/class_labels.txt": ("fa8500d1d6a940a4d7a2dd383cb0f3f508565a3cc71fd34a06ba1c804ec84707", 85799),
    "OpenImages/val/image_ids.txt": ("32f491e7f25f2a99cb26926b85df5a442df2fa990138b2b938e52674cf4b8ab7", 78549),
    "OpenImages/val/image_sizes.txt": ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", 0),
    "OpenImages/val/localization.txt": ("74c9b64d462e423008cda2cb0d4c12bb55b69b2fe438d8e10e49dd61d21d01be", 402938),
}
# ILSVRC/train (1.28 M images; not in the byte-identical copies): checksums unknown, recorded on
# first download. Only with include_ilsvrc_train (large files).
WSOLEVAL_ILSVRC_TRAIN = (
    "ILSVRC/train/class_labels.txt",
    "ILSVRC/train/image_ids.txt",
    "ILSVRC/train/image_sizes.txt",
    "ILSVRC/train/localization.txt",
)
WSOLEVAL_DATASETS = ("CUB", "ILSVRC", "OpenImages")


def _data_cache() -> Path:
    return cache_dir() / "data"


# ------------------------------------------------------------------------------------------ CUB


def fetch_cub(
    root: str | Path, *, mirror: str | None = None, progress: bool = True, annotations_only: bool = False
) -> dict:
    """Download (or reuse) ``CUB_200_2011.tgz``, md5-checked; unpack into ``root``; return the
    ``data check`` report of ``root/CUB_200_2011`` (split test) with ``"fetched"`` added."""
    from wsol.data.check import check_dataset

    root = Path(root)
    folder = root / CUB_FOLDER
    marker = root / f".{CUB_FOLDER}.wsol-fetch.json"
    got = fetch(CUB, _data_cache() / CUB.filename, mirror=mirror, progress=progress)
    done = None
    if marker.is_file():
        try:
            done = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            done = None
    if not (folder.is_dir() and isinstance(done, dict) and done.get("sha256") == got.sha256):
        if folder.exists():
            raise UserError(
                f"{folder} exists but was not unpacked by `wsol data fetch cub` from this archive; "
                f"check it with `wsol data check --format cub --root {folder}`, or remove it and rerun"
            )
        extract_all(got.path, root)
        if not folder.is_dir():
            raise UserError(f"{got.path} did not hold a {CUB_FOLDER}/ folder (not the CUB-200-2011 archive?)")
        from eval.io import atomic_write_json

        atomic_write_json(
            marker,
            {
                "archive": str(got.path),
                "sha256": got.sha256,
                "url": CUB.url,
                "unpacked": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
        )
    report = check_dataset("cub", folder, "test", annotations_only=annotations_only)
    return {"fetched": str(folder), **report}


# ----------------------------------------------------------------------------- wsolevaluation


def wsoleval_remote(rel: str, commit: str = WSOLEVAL_COMMIT) -> Remote:
    """The :class:`Remote` of metadata file ``rel`` (``"CUB/test/image_ids.txt"``)."""
    sha = WSOLEVAL_SHA256.get(rel, (None, None))
    return Remote(
        url=WSOLEVAL_RAW.format(commit=commit, path=rel), filename=f"metadata/{rel}", sha256=sha[0], size=sha[1]
    )


def fetch_wsolevaluation_metadata(
    root: str | Path,
    *,
    datasets: tuple[str, ...] | None = None,
    include_ilsvrc_train: bool = False,
    mirror: str | None = None,
    progress: bool = True,
) -> list[Path]:
    """The metadata files of ``datasets`` (default: all three) into ``root/<dataset>/<split>/``, each
    verified; returns the paths written (a file already there with the right content is kept)."""
    from eval.io import atomic_write_bytes
    from wsol.zoo.download import file_digests

    datasets = tuple(datasets or WSOLEVAL_DATASETS)
    unknown = [d for d in datasets if d not in WSOLEVAL_DATASETS]
    if unknown:
        raise UserError(
            f"unknown wsolevaluation dataset(s) {', '.join(unknown)}; choose from {', '.join(WSOLEVAL_DATASETS)}"
        )
    files = [r for r in WSOLEVAL_SHA256 if r.split("/")[0] in datasets]
    if include_ilsvrc_train and "ILSVRC" in datasets:
        files += list(WSOLEVAL_ILSVRC_TRAIN)
    root = Path(root)
    cache = _data_cache() / f"wsolevaluation-{WSOLEVAL_COMMIT[:7]}"
    store = HashStore()
    written = []
    bar = None
    from wsol.zoo.download import show_progress

    if show_progress(progress) and len(files) > 1:
        from tqdm import tqdm

        bar = tqdm(total=len(files), desc="metadata", unit="file", leave=False)
    try:
        for rel in files:
            remote = wsoleval_remote(rel)
            got = fetch(remote, cache / rel, mirror=mirror, progress=False, store=store)
            dest = root / rel
            if not (dest.is_file() and file_digests(dest, ("sha256",))["sha256"] == got.sha256):
                atomic_write_bytes(dest, got.path.read_bytes())
            written.append(dest)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return written


# ------------------------------------------------------------------------------------ ImageNet


def imagenet_instructions(root: str | Path) -> str:
    """The manual steps for ImageNet ILSVRC2012 val (licence-bound: no automatic download)."""
    root = Path(root)
    return f"""\
ImageNet ILSVRC2012 cannot be downloaded automatically (its licence requires an account).
1. Sign in at https://image-net.org/download-images.php (or the Kaggle "ImageNet Object Localization
   Challenge") and download ILSVRC2012_img_val.tar (6.7 GB) and the validation boxes: either
   LOC_val_solution.csv (+ LOC_synset_mapping.txt) from Kaggle, or ILSVRC2012_bbox_val_v3.tgz.
2. Unpack:
     mkdir -p {root}/val && tar -xf ILSVRC2012_img_val.tar -C {root}/val
     cp LOC_val_solution.csv LOC_synset_mapping.txt {root}/      (Kaggle boxes)
   or: mkdir -p {root}/ILSVRC2012_bbox_val_v3 && tar -xzf ILSVRC2012_bbox_val_v3.tgz -C {root}/ILSVRC2012_bbox_val_v3
   The class order comes from {root}/train/<wnid>/ folders, else {root}/LOC_synset_mapping.txt
   (Kaggle; put it there for the XML boxes too).
3. Check the tree:  wsol data check --format imagenet --root {root} --split val
   For the wsolevaluation metadata instead: wsol data fetch wsolevaluation-metadata --root metadata
   and use --dataset wsolevaluation --data-root {root} --metadata-dir metadata/ILSVRC --split test.
"""
