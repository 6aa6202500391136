"""SNS in the local cloud: moto's topics and subscriptions, created from the template (nothing is sent)."""
