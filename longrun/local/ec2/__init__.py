"""EC2 in the local cloud: the template's network, which loopback does not need (ids only)."""
