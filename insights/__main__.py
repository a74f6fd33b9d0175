"""`python -m insights score`: rank a customer CSV by churn probability, with factors, segment and action.

Thin command line over insights/scoring.py. Bad input ends with one line on stderr and exit code 2;
anything unexpected with one line and exit code 1. Rows with bad cells are left out, each bad cell
listed on stderr in file order, and the rest scored (exit 0); `--strict` makes the first one exit 2.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from common import exit_codes

# TensorFlow's start-up chatter is not for a command-line user; set before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore", category=FutureWarning)

PROG = "python -m insights"


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad input in one line (no usage block), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {message}\n")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _parser() -> _Parser:
    from insights.recommend import RULES_FILE
    from insights.scoring import CHUNK_ROWS
    from modules.features import ID_KEYS

    parser = _Parser(prog=PROG, description="Who will churn, why, and what to do.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    score = commands.add_parser(
        "score", help="rank a customer CSV by churn probability",
        description="Score a customer CSV with the pushed model and write it ranked by churn probability: id, "
                    "churn_probability, risk_band, top_factors, segment, recommended_action, rationale.")
    score.add_argument("--data", type=Path, required=True,
                       help="customer CSV with the model's feature columns and the id column (others are ignored)")
    score.add_argument("--model", type=Path, required=True,
                       help="TF Serving base path (e.g. serving_model/customer-model: its newest version is used) "
                            "or one version folder")
    score.add_argument("--top", type=_positive, help="write only the N customers most likely to churn (default: all)")
    score.add_argument("--out", type=Path,
                       help="output CSV (default: <data folder>/<data name>_scored.csv, e.g. customers_scored.csv)")
    score.add_argument("--rules", type=Path, default=RULES_FILE,
                       help="retention rules file (default: insights/rules.yaml)")
    score.add_argument("--id-column", default=ID_KEYS[0], help=f"customer id column (default: {ID_KEYS[0]})")
    score.add_argument("--chunk-rows", type=_positive, default=CHUNK_ROWS,
                       help=f"rows read and sorted at a time; bounds memory (default: {CHUNK_ROWS:,})")
    score.add_argument("--strict", action="store_true",
                       help="stop at the first bad cell (default: leave its row out and list every bad cell)")
    score.add_argument("--delimiter", help="CSV delimiter: , ; tab or | (default: detected, as in the pipeline)")
    score.add_argument("--decimal", help="decimal mark: . or , (default: detected)")
    score.add_argument("--encoding", help="file encoding, e.g. utf-8, cp1252 (default: detected)")
    score.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    from insights.model import ChurnModel, ScoringError
    from insights.recommend import RulesError, load_rules
    from insights.scoring import default_output, score_file

    out = args.out or default_output(args.data)
    try:
        rules = load_rules(args.rules)
        model = ChurnModel(args.model)
        scored = score_file(args.data, model, rules, out, top=args.top, chunk_rows=args.chunk_rows,
                            id_column=args.id_column, progress=not args.no_progress, strict=args.strict,
                            delimiter=args.delimiter, decimal=args.decimal, encoding=args.encoding)
    except (ScoringError, RulesError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return exit_codes.USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; nothing written", file=sys.stderr)
        return exit_codes.INTERRUPTED
    except Exception as e:  # noqa: BLE001 (a command-line user gets one line, not a traceback)
        print(f"{PROG}: unexpected error: {type(e).__name__}: {e}", file=sys.stderr)
        return exit_codes.FAILED
    for cell in scored.bad_cells:
        print(f"{PROG}: bad cell: {args.data}: {cell}", file=sys.stderr)
    if scored.skipped_rows:
        print(f"{PROG}: warning: {scored.skipped_rows:,} row(s) with bad cells not scored (listed above; fix them "
              "or use --strict to stop at the first)", file=sys.stderr)
    print(f"{scored.written:,} customers ranked by churn probability: {out} (model {model.path}; its decision "
          f"threshold {model.threshold:g} is where the medium risk band starts)")
    return exit_codes.OK


if __name__ == "__main__":
    sys.exit(main())
