"""Benchmarks that report ratios against peers; ``python -m bench`` runs them all."""
