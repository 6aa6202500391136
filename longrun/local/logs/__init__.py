"""CloudWatch Logs in the local cloud: moto's log groups, created from the template."""
