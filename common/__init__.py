"""Project-wide helpers that know nothing about graphs, models or experiments: one-line CLI errors, atomic
files, provenance of results, name registries. Every other package may import this one; it imports none."""
