"""Code that runs only in forked, single-threaded processes: the zygote, monitors
and the launcher (stdlib only, no threads, no D-Bus)."""
