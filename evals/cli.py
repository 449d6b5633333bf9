"""``python -m evals run|fit|diff``: argument parsing and the console; the work is in the modules.

python -m evals run --questions other.yaml --out /tmp/report --no-baseline
python -m evals diff old.json evals/reports/latest.json
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.config import Settings, offline_environment
from assistant.errors import AssistantError

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

    from evals.harness import AssistantLike, EvalRun
    from evals.report import ReportPaths

HERE = Path(__file__).resolve().parent
DEFAULT_QUESTIONS = HERE / "questions.yaml"
DEFAULT_OUT = HERE / "reports"


def _progress(system: str, done: int, total: int) -> None:
    if sys.stderr.isatty():
        end = "\n" if done == total else ""
        print(f"\r{system}: {done}/{total}", end=end, file=sys.stderr, flush=True)


def evaluate(
    questions_path: Path,
    *,
    bot: AssistantLike,
    embeddings: Embeddings | None,
    settings: Settings,
    out: Path,
    chart: bool = True,
) -> tuple[EvalRun, ReportPaths]:
    """Load a set, run it (with the baseline when ``embeddings`` is given), write the report."""
    from evals.baseline import NaiveBaseline
    from evals.harness import run_eval
    from evals.questions import load_questions
    from evals.report import write_report

    questions = load_questions(questions_path)
    baseline = (
        NaiveBaseline(embeddings=embeddings, corpus_dir=settings.corpus_dir)
        if embeddings is not None
        else None
    )
    try:
        run = run_eval(
            questions,
            bot=bot,
            baseline=baseline,
            questions_file=questions_path,
            corpus_dir=settings.corpus_dir,
            progress=_progress,
        )
    finally:
        if baseline is not None:
            baseline.close()
    return run, write_report(run, out, with_chart=chart)


def require_current_index(settings: Settings) -> None:
    """Scores are of the corpus as it is now: an index built from another corpus (a plan
    document added or removed since) would answer from passages that are not there."""
    from assistant.errors import IndexUnusable
    from assistant.indexer import index_is_current

    if not index_is_current(settings):
        raise IndexUnusable(
            f"The index was not built from {settings.corpus_dir} as it is now (a document was "
            "added, changed or removed since, or the index is missing). Run `make index` (or "
            "`python ingest.py`), then score again."
        )


def run_command(args: argparse.Namespace) -> int:
    from evals.gate import gate_failures
    from evals.harness import OURS, display_path
    from evals.questions import load_questions
    from evals.report import console_table

    load_questions(args.questions)  # before the model loads: fail fast on a bad set
    settings = Settings()
    offline_environment()
    require_current_index(settings)
    from assistant import Assistant

    clock = time.perf_counter()
    bot = Assistant.from_settings(settings)
    run, paths = evaluate(
        args.questions,
        bot=bot,
        embeddings=bot.embeddings if args.baseline else None,
        settings=settings,
        out=args.out,
        chart=not args.no_chart,
    )
    print(console_table(run))
    for warning in run.meta.warnings:
        print(f"warning: {warning}")
    print(f"\n{run.meta.n_questions} questions in {time.perf_counter() - clock:.1f} s.")
    print(f"Report: {display_path(paths.markdown)} (JSON: {display_path(paths.json_file)})")
    failures = gate_failures(run.systems[OURS].summary)
    if failures:
        print("Gate failing: " + "; ".join(failures))
        return 1 if args.check else 0
    return 0


def diff_command(args: argparse.Namespace) -> int:
    from evals.diff import RunResults, diff_runs, format_diff, load_results

    old, new = load_results(args.old, RunResults), load_results(args.new, RunResults)
    print(format_diff(diff_runs(old, new), old, new))
    return 0


def fit_command(args: argparse.Namespace) -> int:
    from evals.fit import evaluate_generalization, fit, fit_json, table, write_report

    settings = Settings()
    offline_environment()
    summary = fit(settings, if_stale=args.if_stale)
    state = f"fitted in {summary.seconds} s" if summary.refitted else "up to date"
    print(f"Query model {summary.path}: {state} {summary.description}")
    if not args.folds or (args.if_stale and not summary.refitted):
        return 0
    require_current_index(settings)
    clock = time.perf_counter()
    held_out, inside, heads = evaluate_generalization(settings)
    print(table(held_out, inside))
    print(f"\nLeave-one-writer-out and in-set runs took {time.perf_counter() - clock:.0f} s.")
    print(f"Report: {write_report(held_out, inside, heads)}")
    if args.json:
        args.json.write_text(fit_json(held_out, inside), "utf-8")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m evals", description=__doc__.splitlines()[0])
    commands = top.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the question set and write the report")
    run.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS, help="question YAML file")
    run.add_argument("--out", type=Path, default=DEFAULT_OUT, help="report directory")
    run.add_argument(
        "--baseline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the naive tutorial baseline (default: on)",
    )
    run.add_argument("--no-chart", action="store_true", help="skip the PNG chart")
    run.add_argument(
        "--check", action="store_true", help="exit 1 when the gate floors (evals/gate.py) fail"
    )
    run.set_defaults(handler=run_command)
    fit = commands.add_parser(
        "fit", help="refit the query stage and print the leave-one-writer-out table"
    )
    fit.add_argument(
        "--if-stale", action="store_true", help="refit only when an example file changed"
    )
    fit.add_argument(
        "--folds",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run leave-one-writer-out after fitting (default: on)",
    )
    fit.add_argument(
        "--json",
        type=Path,
        help="also write the scores as JSON here, with every held-out question's result",
    )
    fit.set_defaults(handler=fit_command)
    diff = commands.add_parser("diff", help="list the questions that changed result")
    diff.add_argument("old", type=Path, help="earlier run's JSON")
    diff.add_argument("new", type=Path, help="later run's JSON")
    diff.set_defaults(handler=diff_command)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except AssistantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
