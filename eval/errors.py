"""Errors raised for bad input data (score maps, annotations, boxes)."""


class InputError(ValueError):
    """Bad input: the message names the file, line, key or image at fault."""
