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
from datetime import datetime, timezone
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
    score.add_argument("--id-column", default=None,
                       help="customer id column (default: the model's own, the --id-columns of the run that trained "
                            f"it, read from its serving_with_ids signature; else {ID_KEYS[0]})")
    score.add_argument("--chunk-rows", type=_positive, default=CHUNK_ROWS,
                       help=f"rows read and sorted at a time; bounds memory (default: {CHUNK_ROWS:,})")
    score.add_argument("--strict", action="store_true",
                       help="stop at the first bad cell (default: leave its row out and list every bad cell)")
    score.add_argument("--delimiter", help="CSV delimiter: , ; tab or | (default: detected, as in the pipeline)")
    score.add_argument("--decimal", help="decimal mark: . or , (default: detected)")
    score.add_argument("--encoding", help="file encoding, e.g. utf-8, cp1252 (default: detected)")
    score.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    score.add_argument("--store", metavar="URL",
                       help="also keep every scored customer in the prediction store at this SQLAlchemy URL "
                            "(default: $CHURN_PREDICTION_STORE when set, else no store); one transaction per "
                            "--chunk-rows customers, a failed write fails the command (exit 1)")
    score.add_argument("--period", type=_period,
                       help="business month the scores are for, YYYY-MM (default: the current UTC month)")
    return parser


def _period(text: str) -> str:
    from datetime import datetime

    from monitoring.prediction_store import PERIOD_FORMAT

    try:
        return datetime.strptime(text, PERIOD_FORMAT).strftime(PERIOD_FORMAT)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a month as YYYY-MM, got {text!r}") from None


def _store_url(flag: str | None) -> str | None:
    """`--store`, else `$CHURN_PREDICTION_STORE` (monitoring.prediction_store's variable), else None: no store."""
    from monitoring.prediction_store import STORE_URL_ENV

    return flag or os.environ.get(STORE_URL_ENV) or None


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    from insights.model import ChurnModel, ScoringError
    from insights.recommend import RulesError, load_rules
    from insights.scoring import StoreRecord, default_output, score_file
    from modules.features import ID_KEYS
    from monitoring.prediction_store import PredictionStore, PredictionStoreError

    out = args.out or default_output(args.data)
    url = _store_url(args.store)
    record = None
    try:
        rules = load_rules(args.rules)
        model = ChurnModel(args.model)
        if url is not None:
            if not model.path.name.isdigit():
                raise ScoringError(f"model {model.path}: the prediction store needs the model version, the name of "
                                   "a numeric version folder (give the base path or a folder like .../3)")
            try:
                store = PredictionStore(url)
            except PredictionStoreError as e:
                print(f"{PROG}: error: prediction store: {e}", file=sys.stderr)
                return exit_codes.FAILED
            record = StoreRecord(store, int(model.path.name), datetime.now(timezone.utc), args.period)
        scored = score_file(args.data, model, rules, out, top=args.top, chunk_rows=args.chunk_rows,
                            id_column=args.id_column or next(iter(model.id_columns), ID_KEYS[0]),
                            progress=not args.no_progress, strict=args.strict,
                            delimiter=args.delimiter, decimal=args.decimal, encoding=args.encoding, record=record)
    except (ScoringError, RulesError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return exit_codes.USAGE
    except PredictionStoreError as e:
        print(f"{PROG}: error: prediction store: {e} (rows written before this failure are kept; "
              f"{out} was not written)", file=sys.stderr)
        return exit_codes.FAILED
    except KeyboardInterrupt:  # rows already in the store stay: each chunk was written whole
        kept = "; predictions already in the store are kept" if record is not None else ""
        print(f"{PROG}: interrupted; nothing written to {out}{kept}", file=sys.stderr)
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
    if record is not None:
        record.store.close()
        print(f"{scored.stored:,} predictions kept in the prediction store "
              f"{record.store.engine.url.render_as_string(hide_password=True)}")
    return exit_codes.OK


if __name__ == "__main__":
    sys.exit(main())
