"""TLS settings of the TCP API, checked before the daemon touches anything.

Light on purpose: the daemon validates these before it forks its zygote, and
`ssl` is imported only when TLS is configured.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import InvalidArgument, SdcError

if TYPE_CHECKING:
    import ssl


@dataclass
class TLSSettings:
    """The TLS options of sdcontainerd (flags or the [api] table of sdcontainer.toml)."""

    tls: bool = False
    verify: bool = False
    cacert: str = ""
    cert: str = ""
    key: str = ""
    insecure_tcp: bool = False

    @property
    def enabled(self) -> bool:
        """Whether TCP is served with TLS."""
        return self.tls or self.verify


def server_context(s: TLSSettings) -> ssl.SSLContext:
    """The server's TLS context; a missing or mismatched file is a one-line error."""
    import ssl

    for what, path in (("--tlscert", s.cert), ("--tlskey", s.key)):
        if not path:
            raise InvalidArgument(f"TLS needs {what}")
        if not os.path.isfile(path):
            raise SdcError(f"cannot read {what} {path}: no such file")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(s.cert, s.key)
    except ssl.SSLError as e:
        raise SdcError(f"cannot use TLS certificate {s.cert} with key {s.key}: "
                       f"{e.reason or e}") from None
    except OSError as e:
        raise SdcError(f"cannot read TLS files {s.cert}, {s.key}: {e.strerror}") from None
    if s.verify:
        if not s.cacert:
            raise InvalidArgument("--tlsverify needs --tlscacert")
        try:
            ctx.load_verify_locations(cafile=s.cacert)
        except (ssl.SSLError, OSError) as e:
            raise SdcError(f"cannot read --tlscacert {s.cacert}: "
                           f"{getattr(e, 'strerror', None) or e}") from None
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
