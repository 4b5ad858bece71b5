"""Payment-provider adapters: the internal wallet ledger and an external provider over HTTP."""
