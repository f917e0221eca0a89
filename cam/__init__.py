"""Class activation maps on any device: vanilla CAM and the grad-cam package's methods.

Usable alone (model in, CAMs out): never imports ``wsol`` or ``eval``.
"""
