"""IAM in the local cloud: moto's roles and policies, created from the template."""
