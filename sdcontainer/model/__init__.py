"""Records that cross process boundaries: the launch spec a monitor is forked with."""
