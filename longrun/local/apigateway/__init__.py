"""API Gateway in the local cloud: the REST and WebSocket fronts, served by the local cloud itself."""
