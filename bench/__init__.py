"""Benchmarks (`make bench`): each module prints a table with ratios to in-run baselines."""
