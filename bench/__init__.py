"""Benchmarks: scripts that print figures (never timed assertions). See bench/worker_bench.py."""
