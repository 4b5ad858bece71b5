"""The race lab: fire concurrent buyers at a deployment, record the history, check it."""
