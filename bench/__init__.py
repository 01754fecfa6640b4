"""sdcontainer against podman, side by side, in one run on one image (issue 9).

`python3 -m bench` (or `bench/run`, `make bench`) measures both engines and writes
bench/results/: a JSON record, a markdown table of ratios, a PNG chart and a profile.
"""
