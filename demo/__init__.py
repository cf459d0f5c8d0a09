"""`make demo`: the local two-region replication with the load generator (python -m demo)."""
