"""Shared ground: errors, file I/O, the config schema, the runtime, the registry of names, figures."""
