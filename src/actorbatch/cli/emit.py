"""Documents as JSON on stdout: apart from the terminal's tables (`render`), so that `--json` loads no rich."""

import json
import sys
from typing import Any


def emit_json(document: Any) -> None:
    json.dump(document, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def emit_json_line(document: Any) -> None:
    """One document on one line, flushed: a stream of them is JSON lines."""
    sys.stdout.write(json.dumps(document, default=str) + "\n")
    sys.stdout.flush()
