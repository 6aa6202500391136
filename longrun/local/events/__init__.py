"""EventBridge in the local cloud: moto's buses and rules, with the targets and schedules moto lacks."""
