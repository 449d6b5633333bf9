"""Start the Plan Guide web app: `python app.py` (or `make run`), then open http://127.0.0.1:7860."""

from __future__ import annotations

import sys

from pydantic import ValidationError

from assistant.config import Settings
from assistant.errors import AssistantError
from assistant.ui import launch


def main() -> int:
    try:
        launch(Settings())
    except (AssistantError, ValidationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
