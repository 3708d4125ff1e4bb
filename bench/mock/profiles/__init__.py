"""Built-in provider profiles (TOML data files, read with importlib.resources)."""
