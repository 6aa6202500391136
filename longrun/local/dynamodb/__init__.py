"""DynamoDB in the local cloud: moto's, with the guarantees the job store builds on."""
