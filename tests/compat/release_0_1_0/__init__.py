"""The wire format's reader and writer as release 0.1.0 shipped them (git show v0.1.0:
lambda/replication/wire.py and versions.py, imports pointed here), kept unchanged so the
rolling-upgrade tests meet a real old peer, not a description of one."""
