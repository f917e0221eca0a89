"""Recipes parse, hold the published values, and every key is used by the trainer (no dead keys)."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
import torch
import yaml

from wsol.errors import UserError
from wsol.train import TrainConfig, load_recipe, recipe_names
from wsol.train.config import FIELDS
from wsol.train.optim import lr_factor, split_parameters
from wsol.train.recipes import load_recipe_dict, recipe_description, recipe_path

SHIPPED = {
    "cub_resnet50_cutmix_paper",
    "cub_vgg16_cutmix_paper",
    "imagenet_resnet50_cutmix_paper",
    "cub_resnet50_wsoleval",
    "synthetic_cpu",
}
TRAIN_DIR = Path(__file__).resolve().parents[2] / "wsol" / "train"


def test_shipped_recipes_are_listed_and_described():
    assert SHIPPED <= set(recipe_names())
    for name in recipe_names():
        assert recipe_description(name), name


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_recipe_key_is_a_config_field_and_typed(name):
    raw = yaml.safe_load(recipe_path(name).read_text())
    assert set(raw) <= set(FIELDS)
    cfg = load_recipe(name, ["data_root=/data"])
    for key, value in raw.items():
        got = getattr(cfg, key)
        assert got == value, (key, got, value)
    assert cfg.recipe == name


@pytest.mark.parametrize("aug", ["none", "cutout", "mixup", "cutmix", "cutmix_one_hot", "feature_cutmix"])
@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_recipe_combines_with_every_aug(name, aug):
    cfg = load_recipe(name, ["data_root=/data"], aug=aug)
    assert cfg.aug == aug


def test_published_values():
    r50 = load_recipe("cub_resnet50_cutmix_paper")
    assert (r50.epochs, r50.batch_size, r50.lr, r50.lr * r50.lr_high_mult) == (600, 32, 0.001, 0.01)
    assert r50.lr_milestones == [150, 300, 450] and r50.lr_gamma == 0.1
    assert (r50.momentum, r50.weight_decay, r50.nesterov) == (0.9, 1e-4, False)
    assert r50.model_options["pretrained"] is True and r50.lr_high_params == ["fc.*"]
    vgg = load_recipe("cub_vgg16_cutmix_paper")
    assert (vgg.lr, vgg.lr * vgg.lr_high_mult, vgg.epochs) == (0.0001, pytest.approx(0.001), 600)
    inet = load_recipe("imagenet_resnet50_cutmix_paper")
    assert (inet.epochs, inet.batch_size, inet.lr, inet.lr * inet.lr_high_mult) == (20, 256, 0.01, 0.1)
    assert inet.lr_milestones == [6, 12, 18]
    we = load_recipe("cub_resnet50_wsoleval")
    assert we.nesterov and we.lr_high_params == ["layer4.*", "fc.*"] and we.lr_high_mult == 10
    assert we.val_split == "val" and we.val_every == 1 and we.lr_milestones == [14, 29, 44]
    syn = load_recipe("synthetic_cpu")
    assert syn.model == "small_cnn" and syn.dataset == "synthetic" and syn.cache_images


def test_step_schedules():
    # CutMix: x0.1 every 150 of 600 epochs
    assert [lr_factor(e, [150, 300, 450], 0.1) for e in (0, 149, 150, 299, 300, 450, 599)] == pytest.approx(
        [1, 1, 0.1, 0.1, 0.01, 0.001, 0.001]
    )
    # wsolevaluation decay 15 / 50 epochs: decays at the start of 1-based epochs 15, 30, 45
    one_based = [e + 1 for e in range(50) if lr_factor(e, [14, 29, 44], 0.1) != lr_factor(e - 1, [14, 29, 44], 0.1)]
    assert one_based == [15, 30, 45]


def test_resnet50_param_groups_layer4_and_fc():
    from wsol.models import create_model

    with torch.device("meta"):  # names only: skip the random init
        model = create_model("resnet50", 5)
    base, high, names = split_parameters(model, ["layer4.*", "fc.*"])
    assert names and all(n.startswith(("layer4.", "fc.")) for n in names)
    n_l4 = sum(1 for n, _ in model.named_parameters() if n.startswith(("layer4.", "fc.")))
    assert len(high) == n_l4 and len(base) + len(high) == len(list(model.parameters()))
    with pytest.raises(UserError, match="match no parameter"):
        split_parameters(model, ["classifier.*"])


def test_overrides_are_type_checked():
    cfg = load_recipe(
        "synthetic_cpu",
        [
            "lr=1",
            "nesterov=true",
            "data_root=123",
            "val_split=null",
            "lr_milestones=[3, 5]",
            "aug_options.cutmix.beta=0.5",
            "model_options.widths=[8,8,8,8,8]",
        ],
    )
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float) and cfg.nesterov is True
    assert cfg.data_root == "123" and cfg.val_split is None and cfg.lr_milestones == [3, 5]
    assert cfg.aug_options["cutmix"]["beta"] == 0.5
    assert cfg.model_options["widths"] == [8, 8, 8, 8, 8]
    for bad, match in [
        ("lr=abc", "lr"),
        ("epochs=1.5", "epochs"),
        ("nesterov=3", "nesterov"),
        ("bogus=1", "unknown"),
        ("lr_milestones=[a]", "lr_milestones"),
        ("noequals", "key=value"),
        ("lr.x=1", "not a mapping"),
        ("aug_options.cutmix.alpha=1", "alpha"),
        ("aug_options.nosuchaug.x=1", "not an augmentation"),
    ]:
        with pytest.raises(UserError, match=match):
            load_recipe("synthetic_cpu", [bad])


def test_recipe_file_with_unknown_key_names_the_file(tmp_path):
    bad = tmp_path / "mine.yaml"
    bad.write_text("# mine\nmodel: small_cnn\nlearning_rate: 0.1\n")
    with pytest.raises(UserError, match=r"mine\.yaml.*learning_rate"):
        load_recipe_dict(str(bad))
    typed = tmp_path / "typed.yaml"
    typed.write_text("epochs: ten\n")
    with pytest.raises(UserError, match=r"typed\.yaml.*epochs"):
        load_recipe(str(typed))
    with pytest.raises(UserError, match="unknown recipe"):
        load_recipe("no_such_recipe")


def test_no_dead_config_fields():
    """Every TrainConfig field is read as ``cfg.<field>`` somewhere in the trainer's modules."""
    used: set[str] = set()
    for path in TRAIN_DIR.glob("*.py"):
        if path.name == "config.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "cfg":
                used.add(node.attr)
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert fields - used == set()


def test_cli_parser_lists_recipes_and_augs():
    from wsol.cli import build_parser

    parser = build_parser("train")
    args = parser.parse_args(
        ["--recipe", "synthetic_cpu", "--aug", "mixup", "--out", "x", "--set", "epochs=2", "--seed", "3"]
    )
    assert args.aug == "mixup" and args.overrides == ["epochs=2"] and args.seed == 3
    assert "synthetic_cpu" in parser.description
    with pytest.raises(SystemExit):
        parser.parse_args(["--recipe", "synthetic_cpu", "--aug", "nope", "--out", "x"])
