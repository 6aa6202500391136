"""EFS in the local cloud: a directory under ``--data-dir`` per access point."""
