"""``wsol compare``: one table of several results with intervals and paired p-values."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "compare result files: every metric with its 95% interval and a paired p-value against the first"
DESCRIPTION = HELP + """

Reads result JSON files written by `wsol evaluate` or `wsol evaluate-scoremaps` (and the per-image
CSVs they name) and prints a Markdown table: per model each metric as `value [low, high]`, and for
every model after the first its difference to the first with the two-sided exact McNemar p-value on
the per-image hits (images matched by image_id; the image sets must be identical). MaxBoxAccV2 gets
the exact sign test on per-image mean hits; PxAP has no per-image test. Missing values show as "—".

Examples:
  wsol compare runs/base/result.json runs/cutmix/result.json --names baseline CutMix
  wsol compare a.json b.json c.json --out runs/compare        (writes comparison.md and comparison.csv)
  wsol compare a.json b.json --markdown table.md --csv table.csv
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", nargs="+", metavar="RESULT_JSON",
                        help="result files; the first is the reference of the paired tests")
    parser.add_argument("--names", nargs="+", default=None,
                        help="display names, one per result (default: folder name of result.json, else file stem)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="write DIR/comparison.md and DIR/comparison.csv")
    parser.add_argument("--markdown", default=None, metavar="FILE", help="write the Markdown table to FILE")
    parser.add_argument("--csv", default=None, metavar="FILE",
                        help="write the tidy CSV (one row per model and metric) to FILE")
    parser.add_argument("--decimals", type=int, default=1, help="decimals in the Markdown table (default: 1)")
    parser.add_argument("--quiet", action="store_true", help="do not print the table")


def run(args: argparse.Namespace) -> int:
    from eval.tables import compare_results, comparison_markdown, write_comparison
    from wsol.errors import UserError

    if args.out and (args.markdown or args.csv):
        raise UserError("give either --out DIR or --markdown/--csv, not both")
    if args.names is not None and len(args.names) != len(args.results):
        raise UserError(f"--names: {len(args.names)} names for {len(args.results)} result files")
    comp = compare_results(args.results, names=args.names)
    md_path, csv_path = args.markdown, args.csv
    if args.out:
        md_path, csv_path = Path(args.out) / "comparison.md", Path(args.out) / "comparison.csv"
    if not args.quiet:
        print(comparison_markdown(comp, args.decimals), end="")
    for path in write_comparison(comp, md_path, csv_path, args.decimals):
        print(f"wrote {path}")
    return 0
