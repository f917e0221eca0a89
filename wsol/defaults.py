"""Defaults shared by several jobs, their settings objects and their commands, each written once.

Torch-free (the command-line parsers import it). The choices themselves come from the registries
(:data:`wsol.data.PRESETS`, :data:`cam.CAM_METHODS`); these are the values a run gets when it
names none.
"""

from __future__ import annotations

__all__ = ["BATCH_SIZE", "CAM_METHOD", "PRESET", "SPLIT"]

#: images per forward pass of ``evaluate``, ``compare --checkpoint``, ``robustness``, ``zoo study``
BATCH_SIZE = 32
#: the CAM method of an evaluation (vanilla CAM, Zhou et al. 2016)
CAM_METHOD = "cam"
#: the data preset of an evaluation: resize to SxS, no crop (wsolevaluation)
PRESET = "wsolevaluation"
#: the split an evaluation reads
SPLIT = "test"
