"""The zoo: published ImageNet models as data (one frozen :class:`ZooEntry` each) and the studies.

Registries: ``ZOO`` (name -> :class:`ZooEntry`) and ``STUDIES`` (name -> :class:`Study`); CLI
choices come from them. Sources, links, layouts and published numbers are those of
``../shared/docs/published_sources.md``:

* clovaai/CutMix-PyTorch (Yun et al., "CutMix", ICCV 2019), README "Experimental Results and
  Pretrained Models": nine ImageNet models. The links are Dropbox links; ``?dl=1`` downloads
  them. A *shared folder* link (``/sh/``) gives a zip of the folder whose checkpoint is
  ``model_best.pth.tar`` (``member``); a single-file link (``/s/``) gives the file itself
  (``member`` None). Files: ``{'epoch', 'arch', 'state_dict', 'best_err1', 'optimizer'}``, keys
  prefixed ``module.``; torchvision-layout ResNets (layer4 stride 2, 7x7 CAM at 224).
* torchvision ``ResNet50_Weights.IMAGENET1K_V1`` (original recipe) and ``IMAGENET1K_V2`` (the 2021
  recipe, Mixup alpha 0.2 + CutMix alpha 1.0 among its augmentations), fetched through
  torchvision's weights API; their file names carry the first 8 hex digits of the sha256 (torch
  hub convention), checked on download and on every use.

``sha256`` (of the checkpoint file: the member of an archive) is None where no checksum is
published: the first download records it in the cache
(``<cache>/hashes.json``) and every later use verifies it. ``size_mb``: approximate download
size in MB where published (torchvision's ``_file_size``), else None ("size unknown").
Published numbers are percentages: ``top1_err`` (ImageNet val classification top-1 error) and,
where the CutMix paper reports it, ``top1_loc`` (Table 9: old protocol, ImageNet val, top-1
localization accuracy).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from wsol import defaults
from wsol.registry import Registry

__all__ = ["ZooEntry", "Published", "Study", "ZOO", "STUDIES", "get_entry", "get_study", "DROPBOX_MEMBER"]

CUTMIX_REPO = "clovaai/CutMix-PyTorch"
CUTMIX_PAPER = (
    "Yun et al., CutMix: Regularization Strategy to Train Strong Classifiers with Localizable "
    "Features, ICCV 2019 (arXiv:1905.04899)"
)
CUTMIX_README = "https://github.com/clovaai/CutMix-PyTorch#experimental-results-and-pretrained-models"
TORCHVISION_REPO = "pytorch/vision"
TORCHVISION_V1_PAPER = "He et al., Deep Residual Learning for Image Recognition, CVPR 2016 (torchvision recipe)"
TORCHVISION_V2_PAPER = (
    "torchvision 'How to train state-of-the-art models' recipe (2021), "
    "https://github.com/pytorch/vision/issues/3995#issuecomment-1013906621"
)
DROPBOX_MEMBER = "model_best.pth.tar"  # the checkpoint inside a CutMix-PyTorch shared-folder zip
_LOC_TABLE9 = "CutMix paper Table 9 (old protocol, ImageNet val, top-1 localization accuracy)"

ZOO: Registry = Registry("zoo model")
STUDIES: Registry = Registry("study")


@dataclass(frozen=True)
class Published:
    """What the source publishes (percent). ``top1_loc``: None where not published."""

    top1_err: float | None
    top1_loc: float | None = None
    loc_source: str | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"top1_err": self.top1_err}
        if self.top1_loc is not None:
            out.update(top1_loc=self.top1_loc, loc_source=self.loc_source)
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class ZooEntry:
    """One published model: where it is, what is inside, what was published about it.

    ``kind``: ``"download"`` (fetched by the toolkit's downloader from ``url``, or
    ``<mirror>/<filename>``) or ``"torchvision"`` (``torchvision_weights`` through torchvision's
    weights API). ``filename``: what the URL downloads (its name in the cache and in a mirror);
    ``member``: the checkpoint inside that archive (None: the download is the checkpoint).
    """

    name: str
    arch: str
    arch_options: Mapping[str, Any]
    num_classes: int
    augmentation: str
    repository: str
    paper: str
    published: Published
    url: str
    filename: str
    member: str | None = None
    sha256: str | None = None
    size_mb: float | None = None
    kind: str = "download"
    torchvision_weights: str | None = None
    page: str | None = None  # where the link is published (human-readable page)
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "arch_options", MappingProxyType(dict(self.arch_options)))
        if self.kind not in ("download", "torchvision"):
            raise ValueError(f"zoo entry {self.name}: unknown kind {self.kind!r}")
        if self.kind == "torchvision" and not self.torchvision_weights:
            raise ValueError(f"zoo entry {self.name}: a torchvision entry needs torchvision_weights")

    @property
    def sha256_prefix(self) -> str | None:
        """torch hub convention: ``name-<first hex digits of the sha256>.ext`` (torchvision files)."""
        if self.kind != "torchvision":
            return None
        m = re.search(r"-([a-f0-9]{8,})\.", self.filename)
        return m.group(1) if m else None

    @property
    def checkpoint_spec(self) -> str:
        return f"zoo:{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "arch": self.arch,
            "arch_options": dict(self.arch_options),
            "num_classes": self.num_classes,
            "augmentation": self.augmentation,
            "source": {"repository": self.repository, "paper": self.paper, "page": self.page},
            "published": self.published.to_dict(),
            "url": self.url,
            "filename": self.filename,
            "member": self.member,
            "sha256": self.sha256,
            "sha256_prefix": self.sha256_prefix,
            "size_mb": self.size_mb,
            "kind": self.kind,
            "torchvision_weights": self.torchvision_weights,
            "description": self.description,
        }


@dataclass(frozen=True)
class Study:
    """A fixed set of zoo entries evaluated with one protocol; ``entries[0]`` is the reference of the
    paired tests."""

    name: str
    entries: tuple[str, ...]
    description: str
    dataset_description: str
    preset: str = "cutmix"
    cam_method: str = defaults.CAM_METHOD
    num_classes: int = 1000

    @property
    def reference(self) -> str:
        return self.entries[0]


_TV_OPTIONS = {"layer4_stride": 2, "large_feature_map": False}  # torchvision layout: 7x7 CAM at 224


def _dropbox_download(link: str) -> str:
    """The download URL of a published Dropbox link (``?dl=0`` page -> ``?dl=1`` file/zip)."""
    return link.replace("?dl=0", "?dl=1")


def _cutmix(
    name: str,
    arch: str,
    augmentation: str,
    err: float,
    link: str,
    filename: str,
    member: str | None,
    description: str,
    loc: float | None = None,
    note: str | None = None,
) -> ZooEntry:
    return ZooEntry(
        name=name,
        arch=arch,
        arch_options=_TV_OPTIONS,
        num_classes=1000,
        augmentation=augmentation,
        repository=CUTMIX_REPO,
        paper=CUTMIX_PAPER,
        published=Published(top1_err=err, top1_loc=loc, loc_source=_LOC_TABLE9 if loc is not None else None, note=note),
        url=_dropbox_download(link),
        filename=filename,
        member=member,
        page=link,
        description=description,
    )


_ENTRIES = [
    _cutmix(
        "resnet50-baseline",
        "resnet50",
        "none",
        23.68,
        "https://www.dropbox.com/sh/phwbbrtadrclpnx/AAA9QUW9G_xvBdI-mDiIzP_Ha?dl=0",
        "cutmix_pytorch_resnet50_baseline.zip",
        DROPBOX_MEMBER,
        "CutMix-PyTorch ImageNet ResNet-50, baseline (no mixing)",
        loc=46.30,
    ),
    _cutmix(
        "resnet50-cutmix",
        "resnet50",
        "cutmix",
        21.40,
        "https://www.dropbox.com/sh/w8dvfgdc3eirivf/AABnGcTO9wao9xVGWwqsXRala?dl=0",
        "cutmix_pytorch_resnet50_cutmix.zip",
        DROPBOX_MEMBER,
        "CutMix-PyTorch ImageNet ResNet-50 trained with CutMix",
        loc=47.25,
        note="the README's transfer table says 46.25 top-1 loc; the paper's 47.25 agrees with its text",
    ),
    _cutmix(
        "resnet50-feature-cutmix",
        "resnet50",
        "feature_cutmix",
        21.80,
        "https://www.dropbox.com/sh/zj1wptsg0hwqf0k/AABRNzvjFmIS7_vOEQkqb6T4a?dl=0",
        "cutmix_pytorch_resnet50_feature_cutmix.zip",
        DROPBOX_MEMBER,
        "CutMix-PyTorch ImageNet ResNet-50 trained with Feature CutMix",
    ),
    _cutmix(
        "resnet50-mixup",
        "resnet50",
        "mixup",
        22.58,
        "https://www.dropbox.com/sh/g64c8bda61n12if/AACyaTZnku_Sgibc9UvOSblNa?dl=0",
        "cutmix_pytorch_resnet50_mixup.zip",
        DROPBOX_MEMBER,
        "CutMix-PyTorch ImageNet ResNet-50 trained with Mixup",
        loc=45.84,
    ),
    _cutmix(
        "resnet50-manifold-mixup",
        "resnet50",
        "manifold_mixup",
        22.50,
        "https://www.dropbox.com/sh/bjardjje11pti0g/AABFGW0gNrNE8o8TqUf4-SYSa?dl=0",
        "cutmix_pytorch_resnet50_manifold_mixup.zip",
        DROPBOX_MEMBER,
        "CutMix-PyTorch ImageNet ResNet-50 trained with Manifold Mixup",
    ),
    _cutmix(
        "resnet50-cutout",
        "resnet50",
        "cutout",
        22.93,
        "https://www.dropbox.com/sh/ln8zk2z7zt2h1en/AAA7z8xTBlzz7Ofbd5L7oTnTa?dl=0",
        "cutmix_pytorch_resnet50_cutout.zip",
        DROPBOX_MEMBER,
        "CutMix-PyTorch ImageNet ResNet-50 trained with Cutout",
        loc=46.69,
    ),
    _cutmix(
        "resnet101-cutmix",
        "resnet101",
        "cutmix",
        20.17,
        "https://www.dropbox.com/sh/1z4xnp9nwdmpzb5/AACQX4KU8XkTN0JSTfjkCktNa?dl=0",
        "cutmix_pytorch_resnet101_cutmix.zip",
        DROPBOX_MEMBER,
        "CutMix-PyTorch ImageNet ResNet-101 trained with CutMix",
    ),
    _cutmix(
        "resnet152-cutmix",
        "resnet152",
        "cutmix",
        19.20,
        "https://www.dropbox.com/s/6vq1mzy27z8qxko/resnet152_cutmix_acc_80_80.pth?dl=0",
        "resnet152_cutmix_acc_80_80.pth",
        None,
        "CutMix-PyTorch ImageNet ResNet-152 trained with CutMix",
    ),
    _cutmix(
        "resnext101-32x4d-cutmix",
        "resnext101_32x4d",
        "cutmix",
        19.47,
        "https://www.dropbox.com/s/maysvgopsi17qi0/resnext_cutmix.pth.tar?dl=0",
        "resnext_cutmix.pth.tar",
        None,
        "CutMix-PyTorch ImageNet ResNeXt-101 (32x4d) trained with CutMix",
    ),
    ZooEntry(
        name="resnet50-tv-v1",
        arch="resnet50",
        arch_options=_TV_OPTIONS,
        num_classes=1000,
        augmentation="none (torchvision original recipe)",
        repository=TORCHVISION_REPO,
        paper=TORCHVISION_V1_PAPER,
        published=Published(top1_err=round(100 - 76.13, 2), note="torchvision acc@1 76.13"),
        url="https://download.pytorch.org/models/resnet50-0676ba61.pth",
        filename="resnet50-0676ba61.pth",
        size_mb=97.8,
        kind="torchvision",
        torchvision_weights="ResNet50_Weights.IMAGENET1K_V1",
        page="https://pytorch.org/vision/stable/models/generated/torchvision.models.resnet50.html",
        description="torchvision ResNet-50 IMAGENET1K_V1 (original recipe, no mixing)",
    ),
    ZooEntry(
        name="resnet50-tv-v2",
        arch="resnet50",
        arch_options=_TV_OPTIONS,
        num_classes=1000,
        augmentation="mixup+cutmix (torchvision 2021 recipe: Mixup alpha 0.2, CutMix alpha 1.0, among others)",
        repository=TORCHVISION_REPO,
        paper=TORCHVISION_V2_PAPER,
        published=Published(top1_err=round(100 - 80.858, 2), note="torchvision acc@1 80.858 (80.86)"),
        url="https://download.pytorch.org/models/resnet50-11ad3fa6.pth",
        filename="resnet50-11ad3fa6.pth",
        size_mb=97.8,
        kind="torchvision",
        torchvision_weights="ResNet50_Weights.IMAGENET1K_V2",
        page="https://pytorch.org/vision/stable/models/generated/torchvision.models.resnet50.html",
        description="torchvision ResNet-50 IMAGENET1K_V2 (2021 recipe with Mixup and CutMix)",
    ),
]

for _entry in _ENTRIES:
    ZOO.register(_entry.name, help=_entry.description)(_entry)

STUDIES.register("imagenet-resnet50", help="the eight ImageNet ResNet-50s: six CutMix-PyTorch, two torchvision")(
    Study(
        name="imagenet-resnet50",
        entries=(
            "resnet50-baseline",
            "resnet50-cutmix",
            "resnet50-feature-cutmix",
            "resnet50-mixup",
            "resnet50-manifold-mixup",
            "resnet50-cutout",
            "resnet50-tv-v1",
            "resnet50-tv-v2",
        ),
        description=(
            "the eight published ImageNet ResNet-50s (CutMix-PyTorch baseline, CutMix, Feature CutMix, "
            "Mixup, Manifold Mixup, Cutout; torchvision V1 and V2) on ImageNet val with the CutMix "
            "paper's protocol (resize 256, centre crop 224; old-protocol top-1 loc at sigma 0.15) and "
            "the wsolevaluation metrics (MaxBoxAcc, MaxBoxAccV2); paired tests against the baseline"
        ),
        dataset_description="ImageNet ILSVRC2012 val (50,000 images)",
    )
)


def get_entry(name: str) -> ZooEntry:
    """The entry ``name`` (a ``zoo:`` prefix is accepted); UserError listing the names otherwise."""
    return ZOO.get(name.removeprefix("zoo:"))


def get_study(name: str) -> Study:
    return STUDIES.get(name)
