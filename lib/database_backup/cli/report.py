"""How a command ends well: the state file says success and stdout shows the result."""

from __future__ import annotations

import json

from .state import StateFile


def done(state: StateFile, result: object, message: str) -> None:
    """Record success with `result` and print it as JSON."""
    state.succeed(message, result)
    print(json.dumps(result, indent=2, default=str))
