"""CloudWatch in the local cloud: the template's alarms and dashboard, created in moto (nothing evaluates them)."""
