"""Signal names and numbers as docker accepts them: "SIGHUP", "HUP", "1", "RTMIN+3"."""

from __future__ import annotations

import signal

from ..errors import InvalidArgument


def parse_signal(value: str | int) -> int:
    """The signal number for VALUE, or InvalidArgument naming it."""
    if isinstance(value, int):
        number = value
    else:
        text = value.strip().upper()
        if text.isdigit():
            number = int(text)
        else:
            if not text.startswith("SIG"):
                text = "SIG" + text
            base, plus, offset = text.partition("+")
            base, minus, moffset = base.partition("-") if not plus else (base, "", "")
            try:
                if base in ("SIGRTMIN", "SIGRTMAX") and (plus or minus):
                    delta = int(offset or moffset)
                    number = getattr(signal, base) + (delta if plus else -delta)
                else:
                    number = int(getattr(signal, base))
            except (AttributeError, ValueError):
                raise InvalidArgument(f"invalid signal: {value}") from None
    if not 1 <= number <= signal.SIGRTMAX:
        raise InvalidArgument(f"invalid signal: {value}")
    return number
