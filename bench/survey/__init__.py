"""Your own survey: a workload file (templates, choices or a schema), any persona table, answers read strictly."""
