"""The local cloud's SSM Parameter Store: moto's, with its parameters kept across restarts (persistence)."""
