"""The launcher's one exception, shared by its modules."""

from __future__ import annotations


class ExecFailure(Exception):
    """The workload could not be started; CODE is the exit status docker would give."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
