"""``hub bench``: the performance goals of DESIGN.md §5, each measured against a reference
(probe) in the same run on the same machine, reported as ratios."""
