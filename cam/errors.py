"""Errors raised for bad CAM inputs (targets, models without a CAM layer, non-finite maps)."""


class CAMInputError(ValueError):
    """Bad input to a CAM computation; the message says which image or argument. ``index``: for
    non-finite maps, the batch index of the image at fault (callers map it to an image id)."""

    def __init__(self, message: str = "", *, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index
