"""Shared code of the sender and replicator Lambda functions.

Bundled into both deployment zips; nothing here reads the environment at import time.
"""
