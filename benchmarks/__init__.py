"""trialctl benchmarks: `python benchmarks/run.py` writes benchmarks/results.md."""
