"""sdcontainer: containers as transient systemd scopes."""

__version__ = "0.1.0"
