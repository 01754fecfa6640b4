"""Building images from a Dockerfile: the parser, the build context, the step cache.

The steps themselves run as containers, so running them is the engine's job
(engine/build.py); everything here is pure file and text work.
"""
