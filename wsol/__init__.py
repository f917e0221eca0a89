"""wsol-toolkit: datasets, models, checkpoints, augmentations, training and the CLI.

Importing this package is light (no torch): the CLI's ``evaluate-scoremaps`` path relies on it.
Sub-packages that need torch import it themselves.
"""

__version__ = "0.1.0"
