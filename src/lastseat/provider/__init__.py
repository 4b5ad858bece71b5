"""The external card processor lastseat pays through (`lastseat payments serve`)."""
