"""The build worker: takes builds off the queue, runs them, heartbeats, streams logs, calls back."""
