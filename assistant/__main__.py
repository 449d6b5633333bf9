"""Command line: `python -m assistant {toolkit,ask,feedback,bench}`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from assistant.config import Settings
from assistant.errors import AssistantError, InvalidInput


def _profile(pairs: Sequence[str]) -> dict[str, str]:
    profile: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InvalidInput(
                f"--profile takes element=tier, got {pair!r} (for example equity=essentials)."
            )
        profile[key] = value
    return profile


def cmd_toolkit(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.toolkit import load_toolkit, walk

    toolkit = load_toolkit(settings.corpus_dir)
    if args.json:
        print(toolkit.model_dump_json(indent=2))
    else:
        print("\n".join(walk(toolkit)))
    return 0


def render_reply(reply: object) -> str:
    """A reply as terminal text: the answer, then its numbered sources."""
    from assistant.schema import Reply

    assert isinstance(reply, Reply)
    lines = [reply.text, ""]
    if reply.citations:
        lines.append("Sources:")
        lines += [f"  [{c.marker}] {c.id}  ({c.title})" for c in reply.citations]
    lines += [f"Note: {note}" for note in reply.notes]
    return "\n".join(lines)


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.chat import Assistant, check_profile

    profile = check_profile(_profile(args.profile))  # bad values fail before the model loads
    bot = Assistant.from_settings(settings)
    reply = bot.ask(args.question, history=args.history, profile=profile)
    print(reply.model_dump_json(indent=2) if args.json else render_reply(reply))
    return 0


def cmd_feedback(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.feedback import feedback_cli

    return feedback_cli(args.rest, settings=settings)


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    if args.scale is not None:
        from assistant.scale import run_scale_bench

        return run_scale_bench(settings, scale=args.scale, rounds=args.rounds, keep=args.keep)
    from assistant.bench import run_bench

    return run_bench(settings, rounds=args.rounds)


def cmd_load(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.load import run_load_bench

    return run_load_bench(
        settings, users=args.users, seconds=args.seconds, api=args.api, url=args.url
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m assistant", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    toolkit = sub.add_parser("toolkit", help="print the parsed toolkit as a tree")
    toolkit.add_argument("--json", action="store_true", help="dump the parse as JSON")
    toolkit.set_defaults(run=cmd_toolkit)
    ask = sub.add_parser("ask", help="ask one question")
    ask.add_argument("question")
    ask.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="ELEMENT=TIER",
        help="highest tier completed, e.g. equity=essentials (repeatable)",
    )
    ask.add_argument(
        "--history",
        action="append",
        default=[],
        metavar="TURN",
        help="an earlier question, oldest first (repeatable)",
    )
    ask.add_argument("--json", action="store_true", help="print the reply as JSON")
    ask.set_defaults(run=cmd_ask)
    feedback = sub.add_parser(
        "feedback", help="export feedback: `feedback export --csv`, `feedback to-evals`"
    )
    feedback.add_argument("rest", nargs=argparse.REMAINDER)
    feedback.set_defaults(run=cmd_feedback)
    bench = sub.add_parser("bench", help="measure query latency (median, p95)")
    bench.add_argument("--rounds", type=int, default=100)
    bench.add_argument(
        "--scale",
        type=int,
        metavar="N",
        help="also index N times the toolkit's passages in generated plan documents and compare",
    )
    bench.add_argument("--keep", action="store_true", help="keep the --scale run's temporary files")
    bench.set_defaults(run=cmd_bench)
    load = sub.add_parser("load", help="serve the app and load it with simulated users")
    load.add_argument("--users", type=int, default=100)
    load.add_argument("--seconds", type=float, default=60.0)
    load.add_argument("--api", action="store_true", help="users call /ask instead of chatting")
    load.add_argument("--url", help="load an app already running there instead")
    load.set_defaults(run=cmd_load)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args, Settings()))
    except AssistantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
