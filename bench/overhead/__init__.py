"""Is the harness the bottleneck? Bare clients against the harness, in one run."""
