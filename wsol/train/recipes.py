"""Recipes: YAML files of :class:`~wsol.train.config.TrainConfig` values, shipped in the package.

A recipe is named (``wsol/train/recipes/<name>.yaml``) or given as a file path. Its first comment
line is its one-line description. Overrides ``key=value`` (the CLI's ``--set``) are applied on top:

- the value is YAML (``lr=0.1``, ``nesterov=true``, ``lr_milestones=[10,20]``, ``val_split=null``);
  string keys take the text as-is (``data_root=/data/CUB``);
- dotted keys reach into the dict fields: ``aug_options.cutmix.beta=0.5``,
  ``model_options.pretrained=false``.

Unknown keys and wrong types raise :class:`~wsol.errors.UserError` naming the key and its source.
"""

from __future__ import annotations

import copy
import typing
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from wsol.errors import UserError
from wsol.train.config import FIELDS, TrainConfig, _type_of, coerce, config_from_dict

RECIPE_PACKAGE = "wsol.train"


def _recipe_dir() -> Path:
    return Path(str(resources.files(RECIPE_PACKAGE) / "recipes"))


def recipe_names() -> list[str]:
    """Names of the recipes shipped with the package (sorted)."""
    return sorted(p.stem for p in _recipe_dir().glob("*.yaml"))


def recipe_path(name_or_file: str) -> Path:
    """The YAML file of a shipped recipe name, or ``name_or_file`` itself if it is a file."""
    p = Path(name_or_file)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise UserError(f"recipe file {p} does not exist")
        return p
    shipped = _recipe_dir() / f"{name_or_file}.yaml"
    if not shipped.is_file():
        raise UserError(
            f"unknown recipe {name_or_file!r}; choose from: {', '.join(recipe_names())} or give a .yaml file"
        )
    return shipped


def _read_recipe_text(path: Path) -> str:
    """The text of recipe file ``path`` (UserError naming the file and line when it is not UTF-8)."""
    from eval.errors import InputError
    from eval.results import read_text_file

    try:
        return read_text_file(path)
    except InputError as exc:
        raise UserError(f"recipe {exc}") from None
    except OSError as exc:  # gone since it was found
        raise UserError(f"recipe {path}: cannot read it: {exc.strerror or exc}") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """``LINE:COLUMN: problem`` of a PyYAML error, on one line (1-based)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc)
    problem = " ".join(str(problem).split())
    if mark is None:
        return f" {problem}"
    return f"{mark.line + 1}:{mark.column + 1}: {problem}"


def recipe_description(name_or_file: str) -> str:
    """The first comment line of the recipe file (without ``#``), or ``""``."""
    for line in _read_recipe_text(recipe_path(name_or_file)).splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
        if line.strip():
            break
    return ""


def load_recipe_dict(name_or_file: str) -> dict[str, Any]:
    """The raw mapping of a recipe (keys checked against TrainConfig, values not yet)."""
    path = recipe_path(name_or_file)
    try:
        data = yaml.safe_load(_read_recipe_text(path))
    except yaml.YAMLError as exc:
        raise UserError(f"recipe {path}:{_yaml_problem(exc)} (invalid YAML)") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"recipe {path} must be a mapping of training keys to values")
    for key in data:
        if key not in FIELDS or key == "recipe":
            raise UserError(
                f"recipe {path}: unknown key {key!r}; valid keys: {', '.join(k for k in FIELDS if k != 'recipe')}"
            )
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"a.b=value"`` -> (``["a", "b"]``, parsed value); see the module doc for the rules."""
    if "=" not in text:
        raise UserError(f"--set expects key=value; got {text!r}")
    key, raw = text.split("=", 1)
    path = key.strip().split(".")
    if not path[0] or path[0] not in FIELDS or path[0] == "recipe":
        raise UserError(
            f"--set {text!r}: unknown key {path[0]!r}; valid keys: {', '.join(k for k in FIELDS if k != 'recipe')}"
        )
    if len(path) > 1 and not _is_dict_field(path[0]):
        raise UserError(f"--set {text!r}: {path[0]!r} is not a mapping; use {path[0]}=VALUE")
    if len(path) == 1 and _is_str_field(path[0]):
        if raw.strip().lower() in ("null", "none", "~") and _accepts_none(path[0]):
            return path, None
        return path, raw
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise UserError(f"--set {text!r}: value is not valid YAML: {_yaml_problem(exc)}") from None
    return path, value


def _is_dict_field(name: str) -> bool:
    tp = _type_of(name)
    return tp is dict or typing.get_origin(tp) is dict


def _is_str_field(name: str) -> bool:
    tp = _type_of(name)
    return tp is str or str in typing.get_args(tp)


def _accepts_none(name: str) -> bool:
    return type(None) in typing.get_args(_type_of(name))


def apply_overrides(values: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``values`` with each ``key=value`` override applied (types checked)."""
    out = copy.deepcopy(values)
    for text in overrides:
        path, value = parse_override(text)
        if len(path) == 1:
            out[path[0]] = coerce(path[0], value, f"--set {text!r}")
            continue
        node = out.setdefault(path[0], {})
        for part in path[1:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise UserError(f"--set {text!r}: {part!r} is not a mapping")
            node = child
        node[path[-1]] = value
    return out


def load_recipe(name_or_file: str, overrides: Sequence[str] = (), *, aug: str | None = None) -> TrainConfig:
    """The :class:`TrainConfig` of a recipe with ``--set`` overrides and an optional ``--aug``."""
    values = load_recipe_dict(name_or_file)
    source = f"recipe {recipe_path(name_or_file)}"
    for key, value in values.items():
        coerce(key, value, source)
    if aug is not None and any(parse_override(text)[0] == ["aug"] for text in overrides):
        raise UserError(f"give the augmentation once: --aug {aug} and --set aug=... both set it")
    values = apply_overrides(values, overrides)
    if aug is not None:
        values["aug"] = aug
    values["recipe"] = str(name_or_file)
    cfg = config_from_dict(values, source)
    check_aug_options(cfg)
    return cfg


def check_aug_options(cfg: TrainConfig) -> None:
    """``aug`` is registered and ``aug_options`` maps augmentation names to valid keywords."""
    from wsol.augment import AUGMENTATIONS, build_augmentation

    AUGMENTATIONS.get(cfg.aug)  # clear error for unknown names
    for name, opts in cfg.aug_options.items():
        if name not in AUGMENTATIONS:
            raise UserError(
                f"aug_options: {name!r} is not an augmentation; choose from: {', '.join(AUGMENTATIONS.names())}"
            )
        if not isinstance(opts, dict):
            raise UserError(f"aug_options.{name} must be a mapping of keywords; got {opts!r}")
        build_augmentation(name, 2, **opts)
