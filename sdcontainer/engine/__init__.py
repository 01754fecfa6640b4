"""The daemon's core: containers' life, records, events, restart and health rules."""
