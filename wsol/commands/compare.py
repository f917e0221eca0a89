"""``wsol compare``: one table of several results with intervals and paired p-values."""

from __future__ import annotations

import argparse
from pathlib import Path

from wsol.commands._common import UniqueValues

HELP = "compare result files: every metric with its 95% interval and a paired p-value against the first"
DESCRIPTION = (
    HELP
    + """

Reads result JSON files written by `wsol evaluate` or `wsol evaluate-scoremaps` (and the per-image
CSVs they name) and prints a Markdown table: per model each metric as `value [low, high]`, and for
every model after the first its difference to the first with the two-sided exact McNemar p-value on
the per-image hits (images matched by image_id; the image sets must be identical). MaxBoxAccV2 gets
the exact sign test on per-image mean hits; PxAP has no per-image test. Missing values show as "—".

Examples:
  wsol compare runs/base/result.json runs/cutmix/result.json --names baseline CutMix
  wsol compare a.json b.json c.json --out runs/compare        (writes comparison.md and comparison.csv)
  wsol compare a.json b.json --markdown table.md --csv table.csv
  wsol compare --checkpoint base.pt --checkpoint cutmix.pt --names baseline CutMix \\
      --dataset synthetic --data-root runs/demo/data --out runs/compare
      (evaluates each checkpoint with `wsol evaluate` into OUT/<name>/result.json, then compares)
"""
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from wsol.commands._common import (
        add_cam_method_argument,
        add_data_arguments,
        add_label_subset_argument,
        add_metric_arguments,
        add_model_arguments,
        add_runtime_arguments,
    )

    parser.add_argument(
        "results", nargs="*", metavar="RESULT_JSON", help="result files; the first is the reference of the paired tests"
    )
    c = parser.add_argument_group(
        "--checkpoint evaluations",
        "each --checkpoint is evaluated as `wsol evaluate` would with the options of this group and "
        "of the data, metrics and runtime groups; they act on --checkpoint only (with result files "
        "alone they are refused: the files record their own options)",
    )
    c.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        help="evaluate this checkpoint first (repeat; needs --dataset, --data-root, --out)",
    )
    add_model_arguments(c)
    add_cam_method_argument(c, "CAM method of the --checkpoint evaluations")
    add_label_subset_argument(c)
    c.add_argument(
        "--overwrite",
        action="store_true",
        help="--checkpoint: evaluate again even where OUT/<name>/result.json exists (by default a finished "
        "evaluation with the same configuration is reused, an interrupted one continues, and one with "
        "another configuration is refused)",
    )
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_data_arguments(parser, required=False)
    add_metric_arguments(parser)
    add_runtime_arguments(parser)
    parser.add_argument(
        "--names",
        nargs="+",
        action=UniqueValues,
        default=None,
        help="display names, one per result (default: folder name of result.json, else file stem)",
    )
    parser.add_argument("--out", default=None, metavar="DIR", help="write DIR/comparison.md and DIR/comparison.csv")
    parser.add_argument("--markdown", default=None, metavar="FILE", help="write the Markdown table to FILE")
    parser.add_argument(
        "--csv", default=None, metavar="FILE", help="write the tidy CSV (one row per model and metric) to FILE"
    )
    parser.add_argument(
        "--decimals",
        type=int,
        choices=range(7),
        metavar="0..6",
        default=1,
        help="decimals in the Markdown table (default: 1)",
    )
    parser.add_argument("--quiet", action="store_true", help="do not print the table")


def run(args: argparse.Namespace) -> int:
    from eval.compare import compare_results, comparison_markdown, write_comparison
    from wsol.errors import UserError

    if args.out is not None and (args.markdown is not None or args.csv is not None):
        raise UserError("give either --out DIR or --markdown/--csv, not both")
    _check_outputs(args)
    n_models = len(args.results) + len(args.checkpoint)
    if args.names is not None and len(args.names) != n_models:
        raise UserError(f"--names: {len(args.names)} names for {n_models} result files and checkpoints")
    results = list(args.results)
    if args.checkpoint:
        results += _evaluate_checkpoints(args)
    else:
        idle = _evaluation_options_given(args)
        if idle:
            raise UserError(
                f"{', '.join(idle)}: only used to evaluate a --checkpoint, and none is given (result "
                f"files record their own options); give --checkpoint or drop {'it' if len(idle) == 1 else 'them'}"
            )
    if not results:
        raise UserError("give result files or --checkpoint files to compare")
    comp = compare_results(results, names=args.names)
    md_path, csv_path = args.markdown, args.csv
    if args.out is not None:
        md_path, csv_path = Path(args.out) / "comparison.md", Path(args.out) / "comparison.csv"
    if not args.quiet:
        print(comparison_markdown(comp, args.decimals), end="")
    for path in write_comparison(comp, md_path, csv_path, args.decimals):
        print(f"wrote {path}")
    return 0


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse, before any result is read, an output that cannot name a file ("", ``out/``, an
    existing folder), --markdown and --csv naming the same file, and an output that is one of the
    input results or one of their side files (it would be destroyed)."""
    from eval.io import check_output_file
    from eval.results import result_files
    from wsol.errors import UserError

    if args.out is not None and not str(args.out).strip():
        raise UserError("--out '': empty path; give a folder for comparison.md and comparison.csv")
    outputs = []
    for option, value, example in (("--markdown", args.markdown, "table.md"), ("--csv", args.csv, "table.csv")):
        if value is not None:
            outputs.append((option, check_output_file(value, option, example)))
    if args.out is not None:
        outputs = [(f"--out {args.out}", Path(args.out) / n) for n in ("comparison.md", "comparison.csv")]
    if len(outputs) == 2 and _same_file(outputs[0][1], outputs[1][1]):
        raise UserError(f"--markdown and --csv both name {outputs[1][1]}; give two different files")
    for result in args.results:
        rpath = Path(result)
        inputs = result_files(rpath)  # the JSON and every side file of it
        for option, out in outputs:
            hit = next((p for p in inputs if _same_file(out, p)), None)
            if hit is not None:
                what = "the input result" if hit == rpath else f"a file of the input result {rpath}"
                raise UserError(f"{option} {out}: is {what} ({hit}); it would be overwritten, give another file")


# options that only act on --checkpoint evaluations (the result files' own options are in the files)
_RESULT_OPTIONS = {"results", "names", "out", "markdown", "csv", "decimals", "quiet", "checkpoint", "command", "debug"}


def _evaluation_options_given(args: argparse.Namespace) -> list[str]:
    """The --checkpoint evaluation options given a value other than their default."""
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    return [
        action.option_strings[0]
        for action in parser._actions
        if action.option_strings
        and action.dest not in _RESULT_OPTIONS
        and getattr(args, action.dest, action.default) != action.default
    ]


def _evaluate_checkpoints(args: argparse.Namespace) -> list[str]:
    """Run ``wsol evaluate`` for every ``--checkpoint`` into ``OUT/<name>/result.json``."""
    from eval.results import format_summary
    from wsol.commands._common import evaluate_config
    from wsol.errors import UserError
    from wsol.jobs.evaluate import run_evaluate

    if not (args.out and args.dataset and args.data_root):
        raise UserError("--checkpoint needs --dataset, --data-root and --out")
    names = (args.names or [])[len(args.results) :] or [Path(c.removeprefix("zoo:")).stem for c in args.checkpoint]
    for name in names:  # each names the folder OUT/<name>/ of its evaluation
        if not name or name in (".", "..") or "/" in name or "\\" in name:
            raise UserError(
                f"--names: {name!r} names the folder {args.out}/<name>/ of a --checkpoint evaluation; "
                "use a name without '/' or '\\', other than '.' and '..'"
            )
    if len(set(names)) != len(names):
        names = [f"{i}_{n}" for i, n in enumerate(names)]
    from wsol.errors import Interrupted
    from wsol.jobs.evaluate import result_paths

    paths = []
    for name, ckpt in zip(names, args.checkpoint):
        out = Path(args.out) / name / "result.json"
        try:
            # a finished result is reused, an interrupted one finished (--overwrite: evaluate again)
            result = run_evaluate(
                evaluate_config(
                    args,
                    checkpoint=ckpt,
                    output=str(out),
                    label_subset=args.label_subset,
                    overwrite=args.overwrite,
                    resume=not args.overwrite,
                )
            )
        except KeyboardInterrupt:
            raise Interrupted(
                f"{result_paths(str(out))['log']} keeps the images of {name} scored so far and finished "
                "models are kept; rerun the same command (without --overwrite) to finish (same numbers "
                "as an uninterrupted run)"
            ) from None
        print(f"{name}: {format_summary(result)}")
        paths.append(str(out))
    return paths
