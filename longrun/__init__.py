"""longrun's tools that are not deployed: the command line, the API client and the local cloud."""
