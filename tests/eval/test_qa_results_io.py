"""QA fixes: input files that are folders or not UTF-8 give one line naming the file."""

from __future__ import annotations

import pytest

from eval.errors import InputError
from eval.io import check_output_file
from eval.results import companion_paths, read_per_class_csv, result_files
from eval.scoremaps import read_predictions


def test_predictions_that_are_a_folder_or_not_utf8(tmp_path):
    with pytest.raises(InputError, match="is a folder, not a file"):
        read_predictions(tmp_path, ["a"])
    bad = tmp_path / "p.csv"
    bad.write_bytes(b"\xff\xfe{")
    with pytest.raises(InputError, match="not UTF-8 text"):
        read_predictions(bad, ["a"])


def test_per_class_csv_that_is_not_utf8(tmp_path):
    bad = tmp_path / "r.per_class.csv"
    bad.write_bytes(b"class\n\xff\n")
    with pytest.raises(InputError, match=r"r\.per_class\.csv:2: not UTF-8 text \(byte 0xff\)"):
        read_per_class_csv(bad)


def test_one_naming_rule_and_output_checks(tmp_path):
    assert companion_paths("d/result.json")["per_image"].name == "result.per_image.csv"
    assert companion_paths("d/a.txt")["config"].name == "a.txt.config.json"
    for bad in ("", "out/", str(tmp_path)):
        with pytest.raises(InputError, match="--output"):
            check_output_file(bad)
    assert check_output_file(tmp_path / "r.json").name == "r.json"


def test_result_files_names_the_json_its_side_files_and_those_it_names(tmp_path):
    r = tmp_path / "r.json"
    rule = [r, *companion_paths(r).values()]
    assert result_files(r) == rule  # missing: the naming rule only
    r.write_text('{"per_image": "elsewhere/p.csv", "per_class": 3, "config": "r.config.json"}')
    assert result_files(r) == [*rule, tmp_path / "elsewhere" / "p.csv"]  # a bad key or a known file adds nothing
    r.write_bytes(b"\xff{")
    assert result_files(r) == rule  # unreadable: the reader reports it later
