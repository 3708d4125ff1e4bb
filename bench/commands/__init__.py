"""One module per ``bench`` command; ``bench.cli`` groups them."""
