"""The node speed benchmark behind tools/benchmark_node.py."""
