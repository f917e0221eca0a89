"""Published models one command away: the catalog (``ZOO``, ``STUDIES``), the downloader shared with
``wsol data fetch``, and ``zoo:NAME`` checkpoint resolution. Importing this package is light (no
torch); :mod:`wsol.zoo.resolve` imports torch when it checks weights.
"""

from wsol.zoo.catalog import STUDIES, ZOO, Study, ZooEntry, get_entry, get_study

__all__ = ["ZOO", "STUDIES", "ZooEntry", "Study", "get_entry", "get_study"]
