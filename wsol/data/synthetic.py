"""The embedded synthetic WSOL benchmark (``wsol data synth``): localization-hard by design.

Each ``S x S`` image (default 64) holds one object on a cluttered background:

* **object** = a large ellipse **body** (random size, aspect, rotation, position; the object's
  major extent is ``min_scale``-``max_scale`` (35-80 %) of the side) plus a smaller **head** disc
  at one end of the body's major axis, about ``part_fraction`` (28 %) of the object's pixels.
* **class cue**: the head's *colour* (hue ``c / K``, saturation in ``[head_saturation,
  head_saturation + 0.2]`` = 0.55-0.75) always decides the class: the discriminative part. The body
  carries a striped/checkered texture (period ``texture_period`` = 5.5-8 px at 64 px) whose
  orientation is class ``c``'s pattern for ``texture_agreement`` (95 %) of the images and a
  uniformly random pattern otherwise: a real but less reliable cue over the larger whole. Body
  colours are random and desaturated, so colour alone points at the head.
* **clutter**: a random two-colour gradient, low-frequency colour blotches,
  ``min_distractors``-``max_distractors`` (3-7) distractor shapes (rectangles and bars with
  saturation up to 0.6, i.e. overlapping the head's, desaturated blobs, and patches with the same
  texture family as bodies), and pixel noise over everything.
* **ground truth**: box = tight inclusive box of the whole object (body + head); mask = object
  pixels (the object is painted last, with hard edges, so the mask is exactly what is drawn).

A classifier that only looks at the head therefore yields CAM boxes that are far too small; one
that also uses the body's texture finds more of the object. The defaults were calibrated on the
baseline model only (``synthetic_cpu``, no augmentation; protocol and every attempt in
benchmarks/README.md) so that its metrics sit off their floor and ceiling: the old defaults
(``part_fraction`` 0.16, ``texture_agreement`` 0.8, saturated heads, 3.5-5.5 px textures, scale
30-80 %) put top-1 loc at 1.6 %.

Output: the CUB-200-2011 layout (read by the ``cub`` and ``synthetic`` formats)::

    images/<NNN.hueHHH>/<split>_<kkkk>.png     segmentations/<same>.png (0 / 255)
    images.txt  image_class_labels.txt (1-based)  classes.txt
    train_test_split.txt   (1 = train or val, 0 = test)
    synthetic_split.txt    "<id> <train|val|test>"   (the held-out val split lives here)
    bounding_boxes.txt     "<id> x y w h" with x1 = x + w (the reading ``cub`` uses, = wsolevaluation)
    head_boxes.txt         "<id> x0 y0 x1 y1" inclusive box of the head disc (analysis only)
    synthetic.json         the generation settings (size, classes, seed, ...), written last

Every image comes from its own generator seeded by ``(seed, split, class, k)``, and PNGs carry no
timestamp or path, so a seed gives byte-identical files in any output folder.
"""

from __future__ import annotations

import colorsys
import json
import os
import shutil
import tempfile
import zlib
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from eval.io import atomic_write_text
from wsol.errors import UserError

__all__ = [
    "MAX_SIZE",
    "MIN_SIZE",
    "SynthConfig",
    "Sample",
    "render_sample",
    "generate_synthetic",
    "class_dir_name",
    "SPLITS",
]

SPLITS = ("train", "val", "test")
_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}
_HEAD_OFFSET = 0.25  # head centre at a + 0.25 r from the body centre: it protrudes past the tip
#: the largest image side: an image is rendered in float32 [S, S, 3] with a [2S, 2S, 3] noise bank,
#: and every model and preset resizes to at most a few hundred pixels
MAX_SIZE = 1024
#: the smallest image side: the object, its head and the textures need a few pixels each
MIN_SIZE = 32
#: the top-level entries of a tree this command writes (an --overwrite refuses a tree with others)
_WRITTEN = frozenset(
    {
        "images",
        "segmentations",
        "images.txt",
        "image_class_labels.txt",
        "train_test_split.txt",
        "synthetic_split.txt",
        "bounding_boxes.txt",
        "head_boxes.txt",
        "classes.txt",
        "synthetic.json",
    }
)


@dataclass(frozen=True)
class SynthConfig:
    """Generation settings (all recorded in ``synthetic.json``)."""

    classes: int = 10
    train_per_class: int = 100
    val_per_class: int = 20
    test_per_class: int = 50
    size: int = 64
    seed: int = 0
    part_fraction: float = 0.28
    texture_agreement: float = 0.95
    min_scale: float = 0.35
    max_scale: float = 0.8
    noise: float = 0.03
    min_distractors: int = 3
    max_distractors: int = 7
    texture_period: tuple[float, float] = (5.5, 8.0)  # pixels at 64 px (scaled with the size)
    head_saturation: float = 0.55  # head saturation drawn in [head_saturation, head_saturation + 0.2]

    def validate(self) -> None:
        """Raise :class:`UserError` (one line) on any setting the generator cannot use; nothing is
        written before this passes."""
        if self.classes < 2:
            raise UserError("--classes must be at least 2")
        if not MIN_SIZE <= self.size <= MAX_SIZE:
            raise UserError(f"--size must be in {MIN_SIZE}..{MAX_SIZE}, got {self.size}")
        if self.seed < 0:
            raise UserError(f"--seed must be >= 0, got {self.seed}")
        if min(self.train_per_class, self.val_per_class, self.test_per_class) < 0:
            raise UserError("images per class must be >= 0")
        if not 0 < self.min_scale <= self.max_scale <= 0.95:
            raise UserError("need 0 < min_scale <= max_scale <= 0.95")
        if not 0.02 <= self.part_fraction <= 0.5:
            raise UserError("part_fraction must be in [0.02, 0.5]")
        if not 0.0 <= self.texture_agreement <= 1.0:
            raise UserError("texture_agreement must be in [0, 1]")
        if not 2.0 <= self.texture_period[0] <= self.texture_period[1]:
            raise UserError("need 2 <= texture_period[0] <= texture_period[1]")
        if not 0.2 <= self.head_saturation <= 0.8:
            raise UserError("head_saturation must be in [0.2, 0.8]")
        if not 0 <= self.min_distractors <= self.max_distractors:
            raise UserError("need 0 <= min_distractors <= max_distractors")


@dataclass
class Sample:
    """One rendered image: ``image`` uint8 ``[S, S, 3]``, ``mask`` bool ``[S, S]`` (object pixels),
    ``box`` and ``head_box`` inclusive ``(x0, y0, x1, y1)``, ``texture``: the body's pattern index."""

    image: np.ndarray
    mask: np.ndarray
    box: tuple[int, int, int, int]
    head_box: tuple[int, int, int, int]
    label: int
    texture: int


def class_dir_name(c: int, classes: int) -> str:
    """``"001.hue000"``: CUB-style class folder named by the head hue in degrees."""
    return f"{c + 1:03d}.hue{round(360 * c / classes):03d}"


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32)


def _dull(rng: np.random.Generator, smax: float, vlo: float = 0.25, vhi: float = 0.9) -> np.ndarray:
    """A random colour with saturation <= ``smax`` and value in ``[vlo, vhi)``."""
    h, s, v = rng.random(3).tolist()
    return _hsv(h, s * smax, vlo + v * (vhi - vlo))


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Read-only pixel-centre coordinates ``(xs, ys)``, float32 ``[S, S]``."""
    c = np.arange(size, dtype=np.float32) + 0.5
    xs, ys = c[None, :].repeat(size, 0), c[:, None].repeat(size, 1)
    xs.flags.writeable = False
    ys.flags.writeable = False
    return xs, ys


def _texture(t: int, classes: int, u: np.ndarray, v: np.ndarray, period: float) -> np.ndarray:
    """Pattern ``t`` in [0, 1] on coordinates ``u, v``: stripes (even t) or checks (odd t) at angle
    ``pi * t / classes``."""
    ang = np.pi * t / classes
    ca, sa = np.float32(np.cos(ang)), np.float32(np.sin(ang))
    w = np.float32(2 * np.pi / period)
    a = np.sin((u * ca + v * sa) * w)
    if t % 2:
        a = a * np.sin((v * ca - u * sa) * w)
    return 0.5 + 0.5 * a


def _window(s: int, cx: float, cy: float, rx: float, ry: float) -> tuple[slice, slice]:
    """Rows/columns of the pixels whose centres can lie within ``rx, ry`` of ``(cx, cy)``."""
    x0, x1 = max(int(cx - rx), 0), min(int(cx + rx) + 1, s)
    y0, y1 = max(int(cy - ry), 0), min(int(cy + ry) + 1, s)
    return slice(y0, max(y0, y1)), slice(x0, max(x0, x1))


@lru_cache(maxsize=4)
def _noise_bank(size: int) -> np.ndarray:
    """Read-only standard-normal float32 noise ``[2S, 2S, 3]`` from a fixed seed; each image adds a
    randomly placed ``S x S`` window of it (much cheaper than fresh noise per image)."""
    bank = np.random.default_rng(20240531).standard_normal((2 * size, 2 * size, 3), dtype=np.float32)
    bank.flags.writeable = False
    return bank


@lru_cache(maxsize=8)
def _upsample_matrix(size: int, n: int = 4) -> np.ndarray:
    """Read-only float32 ``[size, n]`` linear-interpolation weights from ``n`` knots to ``size`` pixels."""
    pos = (np.arange(size) + 0.5) * n / size - 0.5
    lo = np.clip(np.floor(pos).astype(int), 0, n - 2)
    frac = np.clip(pos - lo, 0.0, 1.0)
    m = np.zeros((size, n), dtype=np.float32)
    m[np.arange(size), lo] = 1 - frac
    m[np.arange(size), lo + 1] += frac
    m.flags.writeable = False
    return m


def _background(rng: np.random.Generator, cfg: SynthConfig, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    s = cfg.size
    g1, g2 = _dull(rng, 0.6, 0.2, 0.95), _dull(rng, 0.6, 0.2, 0.95)
    phi = rng.uniform(0, 2 * np.pi)
    t = (xs * np.float32(np.cos(phi)) + ys * np.float32(np.sin(phi))) / np.float32(s * 1.42) + np.float32(0.5)
    img = g1 + (g2 - g1) * t[..., None]
    blot = rng.normal(0, 0.08, size=(4, 4, 3)).astype(np.float32)  # 4x4 colour blotches, upsampled
    m = _upsample_matrix(s)
    img += np.tensordot(np.tensordot(m, blot, axes=(1, 0)), m, axes=(1, 1)).transpose(0, 2, 1)
    for _ in range(int(rng.integers(cfg.min_distractors, cfg.max_distractors + 1))):
        _distractor(rng, cfg, img, xs, ys)
    return img


def _distractor(rng: np.random.Generator, cfg: SynthConfig, img: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> None:
    s = cfg.size
    kind = int(rng.integers(0, 4))
    cx, cy = rng.uniform(0, s, size=2)
    if kind == 0:  # rectangle
        hw, hh = rng.uniform(0.04, 0.14, size=2) * s
        img[_window(s, cx, cy, hw, hh)] = _dull(rng, 0.6)
    elif kind == 1:  # bar
        half_len, half_w = rng.uniform(0.08, 0.2) * s, rng.uniform(0.015, 0.04) * s
        ang = rng.uniform(0, np.pi)
        ca, sa = np.float32(np.cos(ang)), np.float32(np.sin(ang))
        win = _window(s, cx, cy, half_len + half_w, half_len + half_w)
        dx, dy = xs[win] - np.float32(cx), ys[win] - np.float32(cy)
        where = (np.abs(dx * ca + dy * sa) <= half_len) & (np.abs(dy * ca - dx * sa) <= half_w)
        img[win][where] = _dull(rng, 0.6)
    elif kind == 2:  # blob (desaturated, so it never looks like a head)
        rx, ry = rng.uniform(0.03, 0.1, size=2) * s
        win = _window(s, cx, cy, rx, ry)
        du, dv = (xs[win] - np.float32(cx)) / np.float32(rx), (ys[win] - np.float32(cy)) / np.float32(ry)
        where = du * du + dv * dv <= 1
        img[win][where] = _dull(rng, 0.45)
    else:  # textured patch of the body family
        hw, hh = rng.uniform(0.06, 0.16, size=2) * s
        win = _window(s, cx, cy, hw, hh)
        pat = _texture(
            int(rng.integers(0, cfg.classes)), cfg.classes, xs[win], ys[win], rng.uniform(*cfg.texture_period) * s / 64
        )
        c1, c2 = _dull(rng, 0.35, 0.15, 0.5), _dull(rng, 0.35, 0.55, 0.95)
        img[win] = c1 + (c2 - c1) * pat[..., None]


def render_sample(label: int, rng: np.random.Generator, cfg: SynthConfig) -> Sample:
    """Render one image of class ``label`` with ``rng`` (see the module docstring)."""
    s = cfg.size
    xs, ys = _grid(s)
    img = _background(rng, cfg, xs, ys)

    # geometry with a = 1 (r^2 = k a b, head centre at a + offset * r along the major axis), then
    # scaled so that the object's larger box side is `scale * S`
    k = cfg.part_fraction / (1 - cfg.part_fraction) * 0.95
    asp = rng.uniform(0.4, 0.75)
    scale = rng.uniform(cfg.min_scale, cfg.max_scale) * s
    theta = rng.uniform(0, 2 * np.pi)
    ct, st = np.cos(theta), np.sin(theta)
    r1 = np.sqrt(k * asp)
    d1 = 1 + _HEAD_OFFSET * r1
    ex1, ey1 = np.sqrt(ct**2 + (asp * st) ** 2), np.sqrt(st**2 + (asp * ct) ** 2)
    w1 = max(ex1, d1 * ct + r1) - min(-ex1, d1 * ct - r1)
    h1 = max(ey1, d1 * st + r1) - min(-ey1, d1 * st - r1)
    a = scale / max(w1, h1)
    b, r, d = a * asp, a * r1, a * d1
    hx, hy = d * ct, d * st
    ex, ey = a * ex1, a * ey1
    lo_x, hi_x = min(-ex, hx - r), max(ex, hx + r)
    lo_y, hi_y = min(-ey, hy - r), max(ey, hy + r)
    cx = rng.uniform(-lo_x + 0.5, s - hi_x - 0.5) if s - hi_x - 0.5 > -lo_x + 0.5 else s / 2 - (lo_x + hi_x) / 2
    cy = rng.uniform(-lo_y + 0.5, s - hi_y - 0.5) if s - hi_y - 0.5 > -lo_y + 0.5 else s / 2 - (lo_y + hi_y) / 2

    win = _window(s, cx + (lo_x + hi_x) / 2, cy + (lo_y + hi_y) / 2, (hi_x - lo_x) / 2 + 1, (hi_y - lo_y) / 2 + 1)
    wx, wy = xs[win], ys[win]
    dx, dy = wx - np.float32(cx), wy - np.float32(cy)
    u = dx * np.float32(ct) + dy * np.float32(st)
    v = dy * np.float32(ct) - dx * np.float32(st)
    body = (u / np.float32(a)) ** 2 + (v / np.float32(b)) ** 2 <= 1
    hdx, hdy = dx - np.float32(hx), dy - np.float32(hy)
    rr = hdx * hdx + hdy * hdy
    head = rr <= np.float32(r * r)

    texture = label if rng.random() < cfg.texture_agreement else int(rng.integers(0, cfg.classes))
    pat = _texture(texture, cfg.classes, wx[body], wy[body], rng.uniform(*cfg.texture_period) * s / 64)
    c1, c2 = _dull(rng, 0.35, 0.15, 0.5), _dull(rng, 0.35, 0.55, 0.95)
    obj = img[win]
    obj[body] = c1 + (c2 - c1) * pat[:, None]
    hc = _hsv(
        label / cfg.classes + rng.uniform(-0.02, 0.02),
        rng.uniform(cfg.head_saturation, cfg.head_saturation + 0.2),
        rng.uniform(0.75, 1.0),
    )
    shade = 1.0 - 0.35 * (rr[head] / np.float32(r * r))
    obj[head] = hc * shade[:, None]

    oy, ox = rng.integers(0, s, size=2).tolist()
    img += _noise_bank(s)[oy : oy + s, ox : ox + s] * np.float32(cfg.noise)
    out = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    mask = np.zeros((s, s), dtype=bool)
    mask[win] = body | head
    head_full = np.zeros((s, s), dtype=bool)
    head_full[win] = head
    return Sample(out, mask, _mask_box(mask), _mask_box(head_full), label, texture)


def _mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    cols = np.flatnonzero(mask.any(axis=0))
    rows = np.flatnonzero(mask.any(axis=1))
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def sample_rng(cfg: SynthConfig, split: str, label: int, k: int) -> np.random.Generator:
    """The generator of image ``k`` of class ``label`` in ``split``: independent of every other."""
    return np.random.default_rng([cfg.seed, _SPLIT_CODE[split], label, k])


def _png_bytes(arr: np.ndarray, level: int = 1) -> bytes:
    """A minimal deterministic PNG (8-bit RGB or greyscale, no ancillary chunks, filter 0, zlib
    ``level``; level 0 stores: the noisy images shrink only ~8 % at level 1 for 30x the time)."""
    h, w = arr.shape[:2]
    color = 2 if arr.ndim == 3 else 0
    raw = np.empty((h, 1 + arr[0].size), dtype=np.uint8)
    raw[:, 0] = 0
    raw[:, 1:] = arr.reshape(h, -1)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + tag + data + zlib.crc32(tag + data).to_bytes(4, "big")

    ihdr = w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([8, color, 0, 0, 0])
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw.tobytes(), level))
        + chunk(b"IEND", b"")
    )


def _write_new(path: Path, data: bytes) -> None:
    """Write a fresh file with three system calls (half the cost of ``Path.write_bytes``)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _check_out(out: Path, overwrite: bool) -> None:
    """Refuse an ``out`` that cannot be replaced (nothing is written or deleted here): a file, or a
    non-empty folder unless ``overwrite`` and it is a tree this command wrote (``synthetic.json``
    and nothing but the names it writes)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    above = next((p for p in out.parents if p.exists()), None)
    if above is not None and not above.is_dir():  # the folder cannot be created under a file
        raise UserError(f"--out {out}: {above} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise UserError(f"--out {out} is not empty; pass --overwrite to replace a synthetic tree")
        if not (out / "synthetic.json").is_file():
            raise UserError(
                f"--out {out} is not empty and holds no synthetic.json; refusing to overwrite "
                "a folder this command did not write"
            )
        others = sorted(p.name for p in out.iterdir() if p.name not in _WRITTEN)
        if others:
            raise UserError(
                f"--out {out} holds files `wsol data synth` did not write ({', '.join(others[:3])}"
                f"{', ...' if len(others) > 3 else ''}); refusing to overwrite it"
            )


def _install(tmp: Path, out: Path) -> None:
    """Put the complete tree ``tmp`` at ``out``; a previous tree (or empty folder) there is
    removed only once the new one is in place."""
    if not out.is_dir():
        os.rename(tmp, out)
        return
    old = tmp.with_name(tmp.name + ".old")
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def generate_synthetic(
    out: str | os.PathLike, cfg: SynthConfig = SynthConfig(), *, overwrite: bool = False, progress: bool = False
) -> dict:
    """Write the benchmark to ``out`` (layout in the module docstring); returns a summary dict
    ``{"root", "images", "train", "val", "test", "classes", "size", "seed"}``."""
    cfg.validate()
    out = Path(out)
    _check_out(out, overwrite)
    place = Path(os.path.abspath(out))  # "." and "x/.." have a name to put a sibling beside
    place.parent.mkdir(parents=True, exist_ok=True)
    # written into a hidden sibling and renamed into place when complete: a crash or Ctrl-C leaves
    # no partial tree at `out` (and the sibling is removed)
    tmp = Path(tempfile.mkdtemp(prefix=f".{place.name}.partial-", dir=place.parent))
    try:
        os.chmod(tmp, 0o755)
        _write_tree(tmp, cfg, progress)
        _install(tmp, place)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    counts = {"train": cfg.train_per_class, "val": cfg.val_per_class, "test": cfg.test_per_class}
    total = sum(counts.values()) * cfg.classes
    return {"root": str(out), "images": total, **counts, "classes": cfg.classes, "size": cfg.size, "seed": cfg.seed}


def _write_tree(out: Path, cfg: SynthConfig, progress: bool) -> None:
    """Write every file of the benchmark into the empty folder ``out`` (``synthetic.json`` last)."""
    counts = {"train": cfg.train_per_class, "val": cfg.val_per_class, "test": cfg.test_per_class}
    dirs = [class_dir_name(c, cfg.classes) for c in range(cfg.classes)]
    for name in dirs:
        (out / "images" / name).mkdir(parents=True, exist_ok=True)
        (out / "segmentations" / name).mkdir(parents=True, exist_ok=True)
    images, labels, split_cub, split_syn, boxes, heads = [], [], [], [], [], []
    total = sum(counts.values()) * cfg.classes
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="synth", unit="img")
    n = 0
    for split in SPLITS:
        for c in range(cfg.classes):
            for k in range(counts[split]):
                n += 1
                smp = render_sample(c, sample_rng(cfg, split, c, k), cfg)
                rel = f"{dirs[c]}/{split}_{k:04d}.png"
                _write_new(out / "images" / rel, _png_bytes(smp.image, level=0))
                _write_new(out / "segmentations" / rel, _png_bytes(smp.mask.astype(np.uint8) * 255))
                x0, y0, x1, y1 = smp.box
                images.append(f"{n} {rel}")
                labels.append(f"{n} {c + 1}")
                split_cub.append(f"{n} {0 if split == 'test' else 1}")
                split_syn.append(f"{n} {split}")
                boxes.append(f"{n} {x0:.1f} {y0:.1f} {x1 - x0:.1f} {y1 - y0:.1f}")
                heads.append(f"{n} {' '.join(str(v) for v in smp.head_box)}")
                if bar is not None:
                    bar.update()
    if bar is not None:
        bar.close()

    def write(name: str, lines: list[str]) -> None:
        atomic_write_text(out / name, "".join(line + "\n" for line in lines))

    write("images.txt", images)
    write("image_class_labels.txt", labels)
    write("train_test_split.txt", split_cub)
    write("synthetic_split.txt", split_syn)
    write("bounding_boxes.txt", boxes)
    write("head_boxes.txt", heads)
    write("classes.txt", [f"{c + 1} {d}" for c, d in enumerate(dirs)])
    info = {"format": "wsol-synthetic", "version": 1, **asdict(cfg)}
    atomic_write_text(out / "synthetic.json", json.dumps(info, indent=2, sort_keys=True) + "\n")
