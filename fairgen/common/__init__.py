"""Shared ground: errors, file I/O, the config schema, the torch runtime, the one seed
derivation, the registry of names, the sweep path grammar, figures."""
