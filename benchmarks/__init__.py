"""The benchmark of daskloss against the read floor and other engines (not installed)."""
