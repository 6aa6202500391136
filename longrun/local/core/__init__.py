"""What concerns moto's server itself rather than one AWS service."""
