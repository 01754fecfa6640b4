"""The D-Bus API: org.sdcontainer1 on the system bus (dbus-next, in the daemon's loop)."""
