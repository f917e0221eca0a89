"""Errors raised for bad CAM inputs (targets, models without a CAM layer, non-finite maps)."""


class CAMInputError(ValueError):
    """Bad input to a CAM computation; the message says which image or argument."""
