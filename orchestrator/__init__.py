"""The orchestrator: a reconcile loop that moves models between pools, and its runtimes."""
