"""The D-Bus API: org.sdcontainer1 on the system bus (dbus-fast, on the daemon's one
bus connection)."""
