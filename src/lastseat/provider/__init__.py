"""The external card processor lastseat pays through in tests and the race lab (`lastseat payments serve`)."""
