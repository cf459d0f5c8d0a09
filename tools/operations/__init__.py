"""The operator tools' logic: verify and repair, backfill, redrive, status.

`tools/ops.py` is their command line; each module here works on `Side`s (one region's account,
clients and names) and can be used from Python as well.
"""
