"""The `lastseat` command line."""
