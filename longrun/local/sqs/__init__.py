"""SQS in the local cloud: moto's, at the cost SQS has."""
