"""A container's output into the journal, as docker's journald log driver writes it.

The monitor, which already lives in the container's scope, sends every line
with sd_journal_sendv: journald attributes a message to the unit of the
sending process, so `journalctl -u sdcontainer-NAME.scope` finds it, and the
native protocol carries docker's fields (CONTAINER_NAME, CONTAINER_ID, ...),
which the stdout stream protocol cannot.
"""

from __future__ import annotations

import logging
from types import ModuleType

log = logging.getLogger(__name__)

# docker's journald driver splits at 16 KiB and marks every piece but the last.
MAX_LINE = 16 * 1024
PRIORITY = {1: "6", 2: "3"}  # stdout: info, stderr: err


class JournalSink:
    """Turns byte chunks of stdout (1) and stderr (2) into journal entries."""

    def __init__(self, fields: dict[str, str]) -> None:
        self._fields = {k: v for k, v in fields.items() if v}
        self._pending: dict[int, bytes] = {1: b"", 2: b""}
        self._broken = False
        # Imported here: an exec session (monitor.exec_session_main) never sends to the
        # journal and need not pay pystemd's import; the zygote has it loaded already.
        import pystemd.journal
        self._journal: ModuleType = pystemd.journal

    def _send(self, stream: int, message: bytes, partial: bool) -> None:
        extra = {"CONTAINER_PARTIAL_MESSAGE": "true"} if partial else {}
        try:
            self._journal.sendv(
                f"PRIORITY={PRIORITY[stream]}",
                MESSAGE=message,
                **self._fields,
                **extra,
            )
        except Exception as e:  # the journal may be gone at shutdown; output must not block
            if not self._broken:
                log.warning("cannot write to the journal: %s", e)
                self._broken = True

    def feed(self, stream: int, data: bytes) -> None:
        """Add DATA read from STREAM; whole lines are sent at once."""
        buf = self._pending[stream] + data
        while True:
            nl = buf.find(b"\n", 0, MAX_LINE + 1)
            if nl >= 0:
                self._send(stream, buf[:nl], False)
                buf = buf[nl + 1:]
            elif len(buf) > MAX_LINE:
                self._send(stream, buf[:MAX_LINE], True)
                buf = buf[MAX_LINE:]
            else:
                break
        self._pending[stream] = buf

    def flush(self) -> None:
        """Send what is left without a newline, marked partial so readers add none."""
        for stream, buf in self._pending.items():
            if buf:
                self._send(stream, buf, True)
            self._pending[stream] = b""
