"""Operator tools: the Lambda build, the load generator, and (later) verify/backfill/redrive."""
