"""sdcontainerd: the daemon that owns container state and serves the APIs."""
