"""Long-running processes that share the Lambda package's code but run outside Lambda (on ECS)."""
