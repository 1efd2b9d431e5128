"""trialctl benchmarks: `python -m benchmarks.run` writes benchmarks/results.md."""
