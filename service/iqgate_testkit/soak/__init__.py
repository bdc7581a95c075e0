"""The hardening campaign behind tools/soak.py: load, faults, bad input, its peers."""
