"""The sdcontainer command line."""
