"""Errors of ``callscope stack``: each names the missing piece and carries a stable code.

    StackError            code, message, log_tail
      code in: JAVA_MISSING, JAVA_TOO_OLD, MAVEN_MISSING, FETCH_FAILED, RECIPES_MISSING,
               PORT_BUSY, START_FAILED, NOT_READY, STOP_FAILED, UNKNOWN_SERVICE, NO_UNPRIVILEGED

A leaf module: it imports nothing of its package, so every other module may raise these.
"""

from __future__ import annotations


class StackError(Exception):
    """A failure the user can fix; ``code`` is stable for scripts, ``message`` is for people."""

    def __init__(self, code: str, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.log_tail = log_tail

    def __str__(self) -> str:
        text = f"{self.code}: {self.message}"
        if self.log_tail:
            text += "\n--- last lines of the log ---\n" + self.log_tail.rstrip() + "\n---"
        return text


class NotReady(Exception):
    """Raised by a readiness probe while the service does not yet answer as it should."""
