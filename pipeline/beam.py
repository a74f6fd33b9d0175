"""Beam arguments of the data-parallel components (CsvExampleGen, StatisticsGen, Transform, Evaluator).

One place decides them for every runner (`local_pipeline.py`, `python -m pipeline.kubeflow_v2`):
- `direct` (default): Beam's DirectRunner on this machine, `in_memory` (one process) or
  `multi_processing` (one worker process per core by default); `auto` picks by the input's size;
- `dataflow`, `flink`, `spark`: the ready-to-use argument sets in `pipeline/beam_presets/<runner>.args`,
  one argument per line, `${VAR}` taken from the environment (each file says which it needs).
Extra `--beam-arg` values come last, so they override a preset's.
"""
from __future__ import annotations

import argparse
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

DIRECT = "direct"
PRESET_DIR = Path(__file__).with_name("beam_presets")
RUNNERS = (DIRECT, "dataflow", "flink", "spark")
DIRECT_MODES = ("in_memory", "multi_processing")
AUTO = "auto"
DEFAULT_MODE = AUTO
MULTI_PROCESSING_FROM_BYTES = 16 << 20
"""`auto` runs multi_processing from this much CSV input (about 240,000 rows of the bundled columns).
`make bench-scale` on 2 cores: in_memory wins at 10,000 rows (starting worker processes costs more than they
save), the two tie at 100,000, multi_processing wins at 1,000,000 (docs/performance.md, "Pipeline at scale")."""
AUTO_WORKERS = 0
"""`--beam-workers 0`: one worker per core (Beam's own default for multi_processing)."""
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class BeamArgsError(ValueError):
    """The Beam arguments cannot be built; the message says what to set."""


def beam_args(runner: str = DIRECT, mode: str = DEFAULT_MODE, workers: int = AUTO_WORKERS,
              extra: Sequence[str] = (), env: Mapping[str, str] | None = None,
              input_bytes: int | None = None) -> tuple[str, ...]:
    """The `beam_pipeline_args` of one run.

    `mode` and `workers` apply to the DirectRunner only; in_memory always runs one worker. `auto`
    needs `input_bytes`, the size of the CSV input.
    """
    if runner == DIRECT:
        mode = direct_mode(mode, input_bytes)
        count = 1 if mode == "in_memory" else workers
        base = [f"--direct_running_mode={mode}", f"--direct_num_workers={count}"]
    else:
        base = preset_args(runner, env)
    return (*base, *extra)


def direct_mode(mode: str, input_bytes: int | None) -> str:
    """The DirectRunner mode `mode` stands for: itself, or for `auto` the one measured faster at this size."""
    if mode == AUTO:
        if input_bytes is None:
            raise BeamArgsError("--beam-mode auto needs the input's size, which this runner does not know; "
                                f"choose one of {', '.join(DIRECT_MODES)}")
        return "multi_processing" if input_bytes >= MULTI_PROCESSING_FROM_BYTES else "in_memory"
    if mode not in DIRECT_MODES:
        raise BeamArgsError(f"unknown DirectRunner mode {mode!r}; choose one of {AUTO}, {', '.join(DIRECT_MODES)}")
    return mode


def preset_args(runner: str, env: Mapping[str, str] | None = None) -> list[str]:
    """`pipeline/beam_presets/<runner>.args` with its `${VAR}`s filled in from `env` (os.environ)."""
    if runner not in RUNNERS or runner == DIRECT:
        raise BeamArgsError(f"unknown Beam runner {runner!r}; choose one of {', '.join(RUNNERS)}")
    env = os.environ if env is None else env
    path = PRESET_DIR / f"{runner}.args"
    lines = [line.strip() for line in path.read_text().splitlines()]
    args = [line for line in lines if line and not line.startswith("#")]
    missing = sorted({name for arg in args for name in _VARIABLE.findall(arg) if not env.get(name)})
    if missing:
        raise BeamArgsError(f"the {runner} Beam arguments ({path.relative_to(PRESET_DIR.parent.parent)}) "
                            f"need these environment variables: {', '.join(missing)}")
    return [_VARIABLE.sub(lambda m: env[m.group(1)], arg) for arg in args]


def runs_on_this_machine(args: Sequence[str]) -> bool:
    """True when Beam arguments `args` run Beam's DirectRunner (no `--runner`, or `--runner` DirectRunner/direct).

    The DirectRunner, in either mode, runs its workers from this process's own Python environment (in process,
    or `python -m apache_beam.runners.worker.sdk_worker_main` subprocesses): it installs no staged package.
    """
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

    runner = PipelineOptions(flags=list(args)).view_as(StandardOptions).runner
    return runner is None or runner.lower() in ("direct", "directrunner")


@contextmanager
def no_worker_package(args: Sequence[str]) -> Iterator[bool]:
    """While the block runs, TFX's Beam executors given `args` skip packaging TFX for remote workers, when
    `args` run the DirectRunner (`runs_on_this_machine`); with any other runner nothing changes. Yields
    whether it skipped.

    Every Beam-based TFX executor (`BaseBeamExecutor.__init__`) calls
    `tfx.utils.dependency_utils.make_beam_dependency_flags`, which, unless the arguments already name a
    dependency, copies the installed `tfx` folder (48 MB, about 2,300 files) to a temp dir, runs `python
    setup.py sdist` on it in a subprocess and adds `--extra_package=<that sdist>`: for remote workers
    (Dataflow, Flink, Spark), which the DirectRunner never uses. Four times per run (CsvExampleGen,
    StatisticsGen, Transform, Evaluator), plus removing the copies afterwards (pipeline/cli.run_scratch_dir):
    docs/performance.md, "Per-run fixed cost of a small run". Executors run in this process under
    `LocalDagRunner`, so replacing the function here reaches all of them; it is restored on leaving.
    """
    if not runs_on_this_machine(args):
        yield False
        return
    from tfx.utils import dependency_utils

    with _replaced(dependency_utils, "make_beam_dependency_flags", _unchanged):
        yield True


@contextmanager
def no_state_cache(args: Sequence[str]) -> Iterator[bool]:
    """While the block runs, Beam's DirectRunner given `args` keeps no state cache in process (as Beam did
    by default before 2.52); with any other runner nothing changes. Yields whether it turned the cache off.

    The in-memory DirectRunner (`EmbeddedWorkerHandler`) sizes its cache by Beam's module constant
    `worker_handlers.STATE_CACHE_SIZE_MB` (100) and ignores `--max_cache_memory_usage_mb`. Its data is
    already in this process, so the cache saves no read, but every side input it loads is weighed with
    `objsize.get_deep_size`, which walks the globals of every loaded module (thousands with TensorFlow):
    2-3 s of CsvExampleGen, StatisticsGen, Transform and the Evaluator on a 4,000-row run
    (docs/performance.md, "Per-run fixed cost of a small run"). Restored on leaving.
    """
    if not runs_on_this_machine(args):
        yield False
        return
    from apache_beam.runners.portability.fn_api_runner import worker_handlers

    with _replaced(worker_handlers, "STATE_CACHE_SIZE_MB", 0):
        yield True


@contextmanager
def _replaced(owner: object, name: str, value: object) -> Iterator[None]:
    """`owner.name` is `value` while the block runs, and what it was before afterwards (also on an exception)."""
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


def _unchanged(beam_pipeline_args: list[str]) -> list[str]:
    """`make_beam_dependency_flags` for the DirectRunner: the arguments as given (a new list, as TFX's returns)."""
    return list(beam_pipeline_args)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The Beam flags both runners share."""
    group = parser.add_argument_group("Beam (the data-parallel components)")
    group.add_argument("--beam-runner", choices=RUNNERS, default=DIRECT,
                       help="where Beam runs: this machine (direct), or the argument set in "
                            "pipeline/beam_presets/<runner>.args")
    group.add_argument("--beam-mode", choices=(AUTO, *DIRECT_MODES), default=DEFAULT_MODE,
                       help="DirectRunner mode: one process, worker processes, or by input size "
                            f"(multi_processing from {MULTI_PROCESSING_FROM_BYTES >> 20} MiB of CSV)")
    group.add_argument("--beam-workers", type=_workers, default=AUTO_WORKERS,
                       help="multi_processing workers (0: one per core)")
    group.add_argument("--beam-arg", action="append", default=[], metavar="ARG",
                       help="one more Beam argument, applied last (repeatable; write --beam-arg=--name=value)")


def from_arguments(args: argparse.Namespace, input_bytes: int | None = None,
                   env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """beam_args() of parsed `add_arguments` flags."""
    return beam_args(args.beam_runner, args.beam_mode, args.beam_workers, args.beam_arg, env, input_bytes)


def _workers(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (one per core) or more, got {text}")
    return value
