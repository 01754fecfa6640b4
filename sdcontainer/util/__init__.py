"""Stdlib helpers any process may use: atomic files, sizes and durations, signal
names, running programs."""
