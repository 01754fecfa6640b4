"""Container networking: bridges, veths, addresses, nftables, name files.

The daemon uses one NetworkManager; see docs/networking.md.
"""

from .config import NetworkConfig
from .manager import NetworkManager
from .model import (
    DEFAULT_NETWORK,
    Attachment,
    AttachRequest,
    EndpointSettings,
    Interface,
    Member,
    NetworkRecord,
    PortMapping,
)

__all__ = [
    "DEFAULT_NETWORK",
    "AttachRequest",
    "Attachment",
    "EndpointSettings",
    "Interface",
    "Member",
    "NetworkConfig",
    "NetworkManager",
    "NetworkRecord",
    "PortMapping",
]
