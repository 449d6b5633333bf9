"""Build the search index from corpus/: `python ingest.py [--force]`."""

from __future__ import annotations

import argparse
import sys

from assistant.config import Settings
from assistant.errors import AssistantError
from assistant.indexer import build_index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--force", action="store_true", help="rebuild even if nothing changed")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        summary = build_index(Settings(), force=args.force, show_progress=not args.quiet)
    except AssistantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        print("The previous index, if any, is unchanged.", file=sys.stderr)
        return 1
    for warning in summary.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(summary.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
