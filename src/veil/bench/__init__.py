"""What `veil bench` runs: benchmarks that measure this machine's ceilings in the same run."""
