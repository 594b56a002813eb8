"""The `hyperion` command line."""
