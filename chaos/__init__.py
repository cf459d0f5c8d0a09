"""Fault campaigns against the emulator, with a checker that judges every key (`make chaos`)."""
