"""Load any supported checkpoint into a WSOL model; save the toolkit's own checkpoints.

Every file is read with ``torch.load(..., weights_only=True)``: a checkpoint is untrusted input.
A file whose pickle needs Python code (a class, a function, numpy scalars, ``argparse.Namespace``)
is refused with a :class:`~wsol.errors.UserError`, never unpickled.

Accepted layouts (the "format" that :func:`inspect_checkpoint` reports):

- ``wsol-toolkit``: this toolkit's own file, written by :func:`save_checkpoint`::

      {"format": "wsol-toolkit/1",
       "arch": "resnet50",                       # a wsol.models.MODELS name
       "arch_options": {"large_feature_map": False, "layer4_stride": 1},
       "num_classes": 200,
       "state_dict": {...},                      # the bare model's state_dict (no "module.")
       ...}                                      # anything else the caller adds: "epoch",
                                                 # "recipe", "optimizer", "scheduler", "metrics"...

  Extra values must be what ``weights_only`` loading accepts (tensors, str/int/float/bool/None,
  and dict/list/tuple of those); :func:`save_checkpoint` checks this before writing, atomically.
- ``wsolevaluation``: ``{"architecture", "epoch", "state_dict", "optimizer"}``, bare keys.
- ``cutmix-pytorch``: ``{"epoch", "arch", "state_dict", "best_err1", "optimizer"}`` with every
  key prefixed ``module.`` (saved from ``nn.DataParallel``).
- ``state_dict-wrapper``: any other dict holding a state dict under ``state_dict``, ``model``
  or ``model_state_dict``.
- ``raw``: a plain state dict (e.g. ``torch.save(model.state_dict())`` of a torchvision model).

``module.`` (DataParallel/DDP) and ``_orig_mod.`` (``torch.compile``) prefixes are stripped.

Architecture when ``arch`` is not given: the recorded one (``wsol-toolkit``), wsolevaluation's
``architecture`` field, else inferred from the parameter names and shapes (Bottleneck vs
BasicBlock ResNets and their depth, VGG16-GAP and its ``features.N`` indices, the Inception SPG
head, ``small_cnn`` and its widths). What the weights cannot tell:

- ResNet ``layer4_stride``: 1 for wsolevaluation files, 2 for CutMix-PyTorch files and for raw /
  other state dicts (the torchvision layout).
- ``large_feature_map`` of ResNet-50 and InceptionV3 (VGG16's is inferred from the indices):
  False. wsolevaluation files do not record it: pass ``large_feature_map=True`` for those models.

``**options`` override everything (they are ``create_model`` options, plus ``num_classes``).
The number of classes comes from the classifier (``fc.weight`` / ``SPG_A4.weight``).
A mismatch is a :class:`UserError` naming the missing / unexpected / mis-shaped keys and the
registered architecture that the keys would fit.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from wsol.errors import UserError
from wsol.io import atomic_save_torch
from wsol.models import MODELS, create_model

FORMAT_TAG = "wsol-toolkit/1"
_RESERVED = ("format", "arch", "arch_options", "num_classes", "state_dict")
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict")
_PREFIXES = ("module.", "_orig_mod.")


@dataclass
class CheckpointSpec:
    """What a checkpoint holds: its layout, architecture, options and the cleaned state dict."""

    format: str
    state_dict: dict[str, Tensor]
    arch: str | None
    arch_options: dict[str, Any] = field(default_factory=dict)
    num_classes: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # every other top-level entry
    read: frozenset[str] = frozenset()  # options the file records or its weights reveal (not guessed)


# ---------------------------------------------------------------------------------------------
# reading
_STRING_OPS = frozenset(
    {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING"}
)
_SAME_TOP_OPS = frozenset({"MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT", "FRAME", "PROTO"})


def _pickle_globals(data: bytes) -> list[str]:
    """``module.name`` of every global that the pickle(s) in ``data`` import, in order.

    Read with :func:`pickletools.genops`, which parses opcodes and never executes anything;
    ``STACK_GLOBAL`` operands are followed through the memo (a placeholder when they cannot be
    told). Parsing stops quietly at the first malformed or truncated byte.
    """
    import io
    import pickletools

    found: list[str] = []
    buf = io.BytesIO(data)
    try:
        for _ in range(8):  # legacy (non-zip) files hold a few pickles back to back
            start = buf.tell()
            memo: dict[int, Any] = {}
            top: list[Any] = []  # the last values pushed (strings, else None)
            for op, arg, _at in pickletools.genops(buf):
                name = op.name
                if name in _STRING_OPS:
                    top.append(arg)
                elif name == "MEMOIZE":
                    memo[len(memo)] = top[-1] if top else None
                elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                    memo[arg] = top[-1] if top else None
                elif name in ("GET", "BINGET", "LONG_BINGET"):
                    top.append(memo.get(arg))
                elif name == "GLOBAL":
                    found.append(str(arg).replace(" ", ".", 1))
                    top.append(None)
                elif name == "STACK_GLOBAL":
                    mod, attr = top[-2:] if len(top) >= 2 else [None, None]
                    ok = isinstance(mod, str) and isinstance(attr, str)
                    found.append(f"{mod}.{attr}" if ok else "<a global named at run time>")
                    top[-2:] = [None]
                elif name not in _SAME_TOP_OPS:
                    top.append(None)
                del top[:-2]
            if buf.tell() <= start or buf.tell() >= len(data):
                break
    except Exception:  # noqa: BLE001 - a malformed pickle: report what was read so far
        pass
    py2 = {"__builtin__": "builtins", "copy_reg": "copyreg"}  # as torch maps protocol-2 names
    return [py2[m] + n[len(m) :] if (m := n.partition(".")[0]) in py2 else n for n in found]


def _code_globals(path: Path) -> list[str]:
    """The globals in the checkpoint's pickle that ``torch.load(weights_only=True)`` does not
    allow (so unpickling them would run code), read without unpickling; [] if none or unreadable."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if n == "data.pkl" or n.endswith("/data.pkl")]
                data = zf.read(names[0]) if names else b""
        else:
            data = path.read_bytes()
    except (OSError, zipfile.BadZipFile, KeyError, ValueError):
        return []
    try:
        from torch._weights_only_unpickler import _get_allowed_globals, _get_user_allowed_globals

        allowed = set(_get_allowed_globals()) | set(_get_user_allowed_globals())
        is_allowed = allowed.__contains__
    except Exception:  # noqa: BLE001 - a private torch helper; fall back to torch's own types

        def is_allowed(name: str) -> bool:
            return name.startswith("torch.") or name in ("collections.OrderedDict", "builtins.set")

    out: list[str] = []
    for name in _pickle_globals(data):
        if not is_allowed(name) and name not in out:
            out.append(name)
    return out


def _unpickling_reason(msg: str) -> str:
    """The reason in torch's weights-only refusal (``"Unsupported operand 103"``), without the
    advice around it to load with ``weights_only=False`` (which does not apply to a file that is
    not a pickle); otherwise the message's first line."""
    found = re.search(r"WeightsUnpickler error:(.*?)(?:Check the documentation|$)", msg, re.S)
    if found and found.group(1).strip():
        return " ".join(found.group(1).split())
    return msg.splitlines()[0] if msg else ""


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with one-line errors naming the file."""
    p = Path(path)
    if p.is_dir():
        raise UserError(f"checkpoint {p} is a folder, not a checkpoint file")
    if not p.is_file():
        raise UserError(f"checkpoint not found: {p}")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            obj = torch.load(p, map_location=map_location, weights_only=True)
        for w in caught:  # loaded: torch's warnings stand (a failure's are dropped: the error says it)
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return obj
    except pickle.UnpicklingError as exc:
        msg = str(exc)
        # torch refuses protocol-4/5 pickles at their first FRAME opcode ("Unsupported operand
        # 149") before naming any global, so read the globals ourselves (without unpickling)
        code = _code_globals(p) if "Weights only load failed" in msg else []
        if not code and "Weights only load failed" in msg and ("GLOBAL" in msg or "global" in msg):
            found = re.search(r"GLOBAL ([\w.]+)", msg)
            code = [found.group(1) if found else "a Python class or function"]
        if code:
            what = ", ".join(code[:3]) + (f" and {len(code) - 3} more" if len(code) > 3 else "")
            raise UserError(
                f"{p}: refused to load: loading this checkpoint would run code (its pickle "
                f"references {what}); unpickling objects beyond tensors and plain containers could "
                "run arbitrary code, and the toolkit loads only weights (torch.load "
                "weights_only=True). If you trust the file, re-save only its state_dict (tensors) "
                "and load that."
            ) from None
        raise UserError(
            f"{p}: cannot read the checkpoint (truncated or corrupt file?): "
            f"{_unpickling_reason(msg) or type(exc).__name__}"
        ) from None
    except (
        RuntimeError,
        EOFError,
        OSError,
        ValueError,
        KeyError,
        zipfile.BadZipFile,
        IndexError,
        TypeError,
        AttributeError,
    ) as exc:
        first = (str(exc).splitlines() or [""])[0][:200]
        raise UserError(
            f"{p}: cannot read the checkpoint (truncated or corrupt file?): "
            f"{type(exc).__name__}{': ' + first if first else ''}"
        ) from None


def _is_state_dict(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items())
    )


def _strip_prefixes(sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    out = dict(sd)
    changed = True
    while changed and out:
        changed = False
        for prefix in _PREFIXES:
            if all(k.startswith(prefix) for k in out):
                out = {k[len(prefix) :]: v for k, v in out.items()}
                changed = True
    return out


def _classes(sd: Mapping[str, Tensor]) -> int | None:
    for key in ("fc.weight", "SPG_A4.weight"):
        if key in sd and sd[key].ndim >= 2:
            return int(sd[key].shape[0])
    return None


def _blocks(sd: Mapping[str, Tensor], stage: str) -> int:
    pat = re.compile(rf"^{stage}\.(\d+)\.")
    return len({m.group(1) for k in sd if (m := pat.match(k))})


def infer_arch(sd: Mapping[str, Tensor]) -> tuple[str, dict[str, Any]] | None:
    """Architecture and the options the weights reveal, from parameter names/shapes (or None)."""
    keys = set(sd)
    if "SPG_A4.weight" in keys and any(k.startswith("Mixed_6e.") for k in keys):
        return "inception_v3", {}
    if "conv6.weight" in keys and "features.0.weight" in keys:
        return "vgg16", {"large_feature_map": "features.23.weight" in keys}
    if "layer4.0.conv1.weight" in keys and "conv1.weight" in keys:
        depth = [_blocks(sd, f"layer{i}") for i in range(1, 5)]
        bottleneck = "layer1.0.conv3.weight" in keys
        if bottleneck and depth == [3, 4, 6, 3]:
            return "resnet50", {}
        conv2 = sd.get("layer1.0.conv2.weight")  # ResNeXt: grouped 3x3 convs (in-channels per group < out)
        grouped = bottleneck and conv2 is not None and conv2.ndim == 4 and conv2.shape[1] != conv2.shape[0]
        if grouped and depth == [3, 4, 23, 3] and tuple(conv2.shape[:2]) == (128, 4):
            return "resnext101_32x4d", {}
        if bottleneck and not grouped and depth == [3, 4, 23, 3]:
            return "resnet101", {}
        if bottleneck and not grouped and depth == [3, 8, 36, 3]:
            return "resnet152", {}
        if not bottleneck and depth == [2, 2, 2, 2]:
            return "resnet18", {}
        if not bottleneck and depth == [3, 4, 6, 3]:
            return "resnet34", {}
        return None
    if "stem.0.weight" in keys and "layer4.0.weight" in keys:
        names = ("stem", "layer1", "layer2", "layer3", "layer4")
        return "small_cnn", {"widths": [int(sd[f"{n}.0.weight"].shape[0]) for n in names]}
    return None


def inspect_checkpoint(obj: Any, source: str = "checkpoint") -> CheckpointSpec:
    """Recognise the layout of a loaded checkpoint and what it says about the model."""
    if _is_state_dict(obj):
        fmt, raw_sd, meta = "raw", obj, {}
    elif isinstance(obj, Mapping):
        wrapper = next((k for k in _WRAPPER_KEYS if _is_state_dict(obj.get(k))), None)
        if wrapper is None:
            keys = ", ".join(map(repr, list(obj)[:10])) or "(none)"
            raise UserError(
                f"{source}: no state dict found (a mapping of names to tensors, at top "
                f"level or under 'state_dict'/'model'); top-level keys: {keys}"
            )
        raw_sd, meta = obj[wrapper], {k: v for k, v in obj.items() if k != wrapper}
        if obj.get("format") == FORMAT_TAG or {"arch", "arch_options", "num_classes"} <= set(obj):
            fmt = "wsol-toolkit"
        elif "architecture" in obj:
            fmt = "wsolevaluation"
        elif "arch" in obj and ("best_err1" in obj or all(k.startswith("module.") for k in raw_sd)):
            fmt = "cutmix-pytorch"
        else:
            fmt = "state_dict-wrapper"
    else:
        raise UserError(
            f"{source}: not a checkpoint: it holds a {type(obj).__name__}, not a state dict or a dict with one"
        )

    sd = _strip_prefixes(raw_sd)
    arch: str | None = None
    options: dict[str, Any] = {}
    num_classes = _classes(sd)
    if fmt == "wsol-toolkit":
        arch = str(meta.get("arch"))
        options = dict(meta.get("arch_options") or {})
        num_classes = int(meta.get("num_classes", num_classes or 0)) or num_classes
        read = frozenset(options)
    else:
        named = meta.get("architecture") if fmt == "wsolevaluation" else None
        inferred = infer_arch(sd)
        if inferred is not None:
            arch, options = inferred[0], dict(inferred[1])
        elif isinstance(named, str) and named in MODELS:
            arch = named
        read = frozenset(options)
        if arch in (
            "resnet50",
            "resnet18",
            "resnet34",
            "resnet101",
            "resnet152",
            "resnext101_32x4d",
        ):  # a guess from the layout, not read
            options.setdefault("layer4_stride", 1 if fmt == "wsolevaluation" else 2)
    extra = {k: v for k, v in meta.items() if k not in _RESERVED}
    return CheckpointSpec(fmt, sd, arch, options, num_classes, extra, read)


@dataclass(frozen=True)
class LoadReport:
    """How a checkpoint became a model: its layout and which options were assumed.

    ``assumed``: option -> value for every architecture option that neither the file (recorded
    or revealed by the weights' shapes) nor the caller gave; each changes with the flag
    ``--<option with dashes>`` (e.g. ``--large-feature-map``).
    """

    source: str
    format: str
    arch: str
    arch_options: dict[str, Any]
    num_classes: int
    assumed: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "checkpoint": self.source,
            "format": self.format,
            "arch": self.arch,
            "arch_options": dict(self.arch_options),
            "num_classes": self.num_classes,
            "assumed_options": dict(self.assumed),
        }


def option_flag(name: str) -> str:
    """The command-line flag of architecture option ``name`` (``large_feature_map`` -> ``--large-feature-map``)."""
    return "--" + name.replace("_", "-")


# ---------------------------------------------------------------------------------------------
# matching a state dict against a model
def _diff(model_sd: Mapping[str, Tensor], sd: Mapping[str, Tensor]) -> tuple[list, list, list]:
    missing = [k for k in model_sd if k not in sd]
    unexpected = [k for k in sd if k not in model_sd]
    shaped = [
        (k, tuple(sd[k].shape), tuple(model_sd[k].shape))
        for k in model_sd
        if k in sd and tuple(sd[k].shape) != tuple(model_sd[k].shape)
    ]
    return missing, unexpected, shaped


def _meta_model(arch: str, num_classes: int, options: Mapping[str, Any]) -> nn.Module:
    with torch.device("meta"):
        return create_model(arch, num_classes, **options)


def _candidates(sd: Mapping[str, Tensor]) -> list[tuple[str, dict[str, Any]]]:
    """The inferred architecture first (usually the answer), then every registered one."""
    out: list[tuple[str, dict[str, Any]]] = []
    inferred = infer_arch(sd)
    if inferred is not None:
        out.append(inferred)
    for name in MODELS.names():
        if name == "small_cnn":
            continue  # its widths are inferred above when the keys look like it
        # only VGG16's large_feature_map changes parameter names
        for lfm in (False, True) if name == "vgg16" else (False,):
            out.append((name, {"large_feature_map": lfm}))
    return out


def suggest_arch(sd: Mapping[str, Tensor], exclude: tuple[str, Mapping[str, Any]] | None = None) -> str:
    """A sentence naming the registered architecture the keys fit (or the closest one)."""
    k = _classes(sd) or 1000
    best: tuple[int, str, dict[str, Any]] | None = None
    for name, opts in _candidates(sd):
        try:
            model_sd = _meta_model(name, k, opts).state_dict()
        except Exception:  # noqa: BLE001 - a candidate that cannot be built is no candidate
            continue
        missing, unexpected, shaped = _diff(model_sd, sd)
        score = len(missing) + len(unexpected) + len(shaped)
        if best is None or score < best[0]:
            best = (score, name, opts)
        if score == 0:
            break
    if best is None:
        return "No registered architecture could be compared."
    score, name, opts = best
    shown = ", ".join(f"{a}={b!r}" for a, b in opts.items())
    call = f"arch={name!r}" + (f" with {shown}" if shown else "")
    if score == 0:
        if exclude is not None and exclude[0] == name and dict(exclude[1]).items() >= opts.items():
            return f"The keys fit this architecture with {k} classes: check num_classes and the options."
        return f"The keys fit {call}: pass that."
    return (
        f"No registered architecture fits exactly; the closest is {call} "
        f"({score} differing keys). Registered: {', '.join(MODELS.names())}."
    )


def _preview(items: list, n: int = 5) -> str:
    shown = ", ".join(str(i) for i in items[:n])
    return shown + (f", ... ({len(items) - n} more)" if len(items) > n else "")


def mismatch_message(
    source: str,
    arch: str,
    options: Mapping[str, Any],
    num_classes: int,
    model_sd: Mapping[str, Tensor],
    sd: Mapping[str, Tensor],
) -> str | None:
    """None when ``sd`` fits ``model_sd`` exactly, else the full one-paragraph explanation."""
    missing, unexpected, shaped = _diff(model_sd, sd)
    if not (missing or unexpected or shaped):
        return None
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing key(s): {_preview(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s): {_preview(unexpected)}")
    if shaped:
        rows = [f"{k} file {list(a)} vs model {list(b)}" for k, a, b in shaped]
        parts.append(f"{len(shaped)} mis-shaped key(s): {_preview(rows, 3)}")
    opts = ", ".join(f"{k}={v!r}" for k, v in options.items())
    return (
        f"{source}: the weights do not fit arch {arch!r} ({num_classes} classes"
        f"{', ' + opts if opts else ''}): {'; '.join(parts)}. "
        f"{suggest_arch(sd, exclude=(arch, options))}"
    )


# ---------------------------------------------------------------------------------------------
def _as_device(map_location: Any) -> torch.device | None:
    if isinstance(map_location, torch.device):
        return map_location
    if isinstance(map_location, str):
        return torch.device(map_location)
    return None


def _owned(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """Each tensor contiguous with a storage of its own (a file may hold views sharing one
    storage, or expanded tensors); tensors that already are (the usual case) are not copied."""
    seen: set[int] = set()
    out = {}
    for k, v in sd.items():
        if v.is_meta:
            out[k] = v
            continue
        ptr = v.untyped_storage().data_ptr()
        whole = (
            v.is_contiguous()
            and v.storage_offset() == 0
            and v.untyped_storage().nbytes() == v.numel() * v.element_size()
        )
        out[k] = v if whole and ptr not in seen else v.clone(memory_format=torch.contiguous_format)
        seen.add(ptr)
    return out


def build_from_state_dict(
    sd: Mapping[str, Tensor],
    arch: str,
    num_classes: int,
    options: Mapping[str, Any],
    source: str = "checkpoint",
    device: torch.device | None = None,
) -> nn.Module:
    """Create ``arch`` and load ``sd`` into it with strict=True semantics (eval mode on return).

    The model is built on the meta device and copies of the tensors are assigned (cast to the
    model's floating dtype), so no time is spent on a random init that would be overwritten.
    """
    meta = _meta_model(arch, num_classes, options)
    model_sd = meta.state_dict()
    problem = mismatch_message(source, arch, options, num_classes, model_sd, sd)
    if problem:
        raise UserError(problem)
    cast = _owned({k: (v.to(model_sd[k].dtype) if v.is_floating_point() else v) for k, v in sd.items()})
    meta.load_state_dict(cast, strict=True, assign=True)
    on_meta = device is not None and device.type == "meta"
    leftovers = [n for n, t in list(meta.named_parameters()) + list(meta.named_buffers()) if t.is_meta]
    if leftovers and not on_meta:  # a non-persistent buffer: build for real and copy instead
        model = create_model(arch, num_classes, **options)
        model.load_state_dict(cast, strict=True)
    else:
        model = meta
    if device is not None:
        model = model.to(device)
    return model.eval()


def load_checkpoint(
    path: str | os.PathLike, arch: str | None = None, map_location: Any = "cpu", **options: Any
) -> nn.Module:
    """Load a checkpoint file into the WSOL model it describes; the model is in eval mode.

    ``arch``: a ``wsol.models.MODELS`` name; inferred when None (see the module docstring).
    ``map_location``: where the tensors (and the model) go; ``"meta"`` checks names and shapes
    strictly without reading any weight data (a model on the meta device). ``options``: ``create_model``
    options (``large_feature_map``, ``layer4_stride``, ``widths``...) and ``num_classes``;
    they override what the file records or implies.
    """
    if str(path).startswith("zoo:"):  # a published model (wsol zoo list): a verified local file + its options
        from wsol.zoo.resolve import resolve_checkpoint

        path, zoo_arch, zoo_options = resolve_checkpoint(str(path))
        arch = arch or zoo_arch
        options = {**zoo_options, **options}  # given, not assumed: the catalog states them
    source = str(path)
    spec = inspect_checkpoint(read_checkpoint(path, map_location=map_location), source=source)
    if "pretrained" in options:
        raise UserError(f"{source}: 'pretrained' does not apply when loading a checkpoint")
    num_classes = options.pop("num_classes", None) or spec.num_classes
    if arch is None:
        arch = spec.arch
        if arch is None:
            raise UserError(
                f"{source}: cannot tell the architecture from the file ({spec.format} "
                f"layout); pass arch=one of {', '.join(MODELS.names())}. "
                f"{suggest_arch(spec.state_dict)}"
            )
        merged = {**spec.arch_options, **options}
    else:
        MODELS.get(arch)  # unknown name: UserError listing the choices
        recorded = spec.arch_options if spec.arch == arch else {}
        merged = {**recorded, **options}
    if not num_classes:
        raise UserError(
            f"{source}: cannot infer the number of classes (no fc.weight / SPG_A4.weight); pass num_classes=..."
        )
    model = build_from_state_dict(
        spec.state_dict, arch, int(num_classes), merged, source, device=_as_device(map_location)
    )
    given = set(options) | (set(spec.read) if spec.arch == arch else set())
    resolved = dict(getattr(model, "arch_options", merged))
    model.load_report = LoadReport(
        source, spec.format, arch, resolved, int(num_classes), {k: v for k, v in resolved.items() if k not in given}
    )
    return model


def init_from_checkpoint(model: nn.Module, path: str | os.PathLike) -> list[str]:
    """Copy into ``model`` every tensor of checkpoint ``path`` (any layout, or ``zoo:NAME``) whose
    name and shape match (fine-tuning: a classifier of another class count stays as initialized).
    Returns the names of ``model``'s tensors that were kept; raises :class:`UserError` when fewer
    than half of them match (the wrong architecture)."""
    source = str(path)
    if source.startswith("zoo:"):
        from wsol.zoo.resolve import resolve_checkpoint

        path, _, _ = resolve_checkpoint(source)
    spec = inspect_checkpoint(read_checkpoint(path), source=str(path))
    own = model.state_dict()
    take = {k: v for k, v in spec.state_dict.items() if k in own and own[k].shape == v.shape}
    kept = [k for k in own if k not in take]
    if len(take) < len(own) / 2:
        raise UserError(
            f"{source}: only {len(take)} of the model's {len(own)} tensors match by name and "
            f"shape; is it a {getattr(model, 'arch', type(model).__name__)} checkpoint? "
            f"{suggest_arch(spec.state_dict)}"
        )
    model.load_state_dict({**own, **take})
    return kept


# ---------------------------------------------------------------------------------------------
# saving
_SAFE_SCALARS = (str, int, float, bool, type(None), torch.Tensor, torch.Size, torch.dtype, torch.device)


def _check_safe(value: Any, where: str) -> None:
    if isinstance(value, _SAFE_SCALARS):
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, (str, int, float, bool, type(None))):
                raise TypeError(
                    f"save_checkpoint: key {k!r} at {where} is a {type(k).__name__}; "
                    "weights_only loading accepts str/int/float/bool keys"
                )
            _check_safe(v, f"{where}[{k!r}]")
        return
    if isinstance(value, (list, tuple, set)):
        for i, v in enumerate(value):
            _check_safe(v, f"{where}[{i}]")
        return
    raise TypeError(
        f"save_checkpoint: {where} is a {type(value).__module__}.{type(value).__name__}, "
        "which weights_only loading refuses; convert it (e.g. .item(), float(), "
        "dataclasses.asdict, str)"
    )


def _unwrap(model: nn.Module) -> nn.Module:
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def save_checkpoint(path: str | os.PathLike, model: nn.Module, **extra: Any) -> Path:
    """Write ``model`` (a WSOL model, possibly wrapped in DataParallel/DDP/compile) and ``extra``
    (e.g. ``epoch``, ``recipe``, ``optimizer=opt.state_dict()``) atomically in the
    ``wsol-toolkit`` format. Returns the path. Raises TypeError for values that
    ``weights_only`` loading would refuse, before anything is written."""
    inner = _unwrap(model)
    for attr in ("arch", "arch_options", "num_classes"):
        if not hasattr(inner, attr):
            raise TypeError(f"save_checkpoint: the model has no {attr!r}; build it with wsol.models.create_model")
    clash = sorted(set(extra) & set(_RESERVED))
    if clash:
        raise TypeError(f"save_checkpoint: {', '.join(clash)} are reserved keys")
    for key, value in extra.items():
        _check_safe(value, key)
    payload = {
        "format": FORMAT_TAG,
        "arch": str(inner.arch),
        "arch_options": _plain(dict(inner.arch_options)),
        "num_classes": int(inner.num_classes),
        "state_dict": inner.state_dict(),
        **extra,
    }
    _check_safe(payload["arch_options"], "arch_options")
    return atomic_save_torch(payload, path)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
