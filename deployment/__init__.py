"""What a deployment is, shared by the operator tools and the emulator (both stand on the engine,
never on each other): the names from defaults.json, how the two functions are configured from
them, the shapes Lambda delivers stream records in, and reading a table whole."""
