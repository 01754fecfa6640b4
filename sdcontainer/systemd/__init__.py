"""Everything that talks to PID 1, machined and journald, and the generator systemd runs at boot."""
