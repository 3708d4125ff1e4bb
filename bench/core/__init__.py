"""The core: calls and personas, the ask/answer contract, records, prices, tokens, synthetic prompts.

Imports nothing of ours outside ``bench.core``; every other package builds on it.
"""
