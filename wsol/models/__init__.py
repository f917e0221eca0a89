"""WSOL backbones behind one factory: ``create_model(name, num_classes, **options)``.

Registered in ``MODELS``: ``resnet50`` (wsolevaluation layout; ``layer4_stride=2`` for the
torchvision / CutMix-PyTorch layout), ``resnet18``, ``resnet34``, ``resnet101``, ``resnet152``,
``resnext101_32x4d`` (torchvision layout), ``vgg16`` (GAP + conv6),
``inception_v3`` (CAM variant) and ``small_cnn``. Every model is a :class:`WSOLModel`
(contract in ``wsol/models/base.py`` and ``docs/architecture.md``).
"""

from wsol.models.base import WSOLModel
from wsol.models.factory import MODELS, create_model

# Imported for their registrations, in the order the CLI lists them.
from wsol.models import resnet  # noqa: E402,F401  isort: skip
from wsol.models import vgg  # noqa: E402,F401  isort: skip
from wsol.models import inception  # noqa: E402,F401  isort: skip
from wsol.models import small  # noqa: E402,F401  isort: skip

__all__ = ["MODELS", "WSOLModel", "create_model"]
