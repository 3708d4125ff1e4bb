"""llm-concurrency-bench: how should I fan out LLM API calls, and how far?"""
