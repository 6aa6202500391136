"""Benchmarks of longrun, run by ``make bench`` (``python -m bench``).

Each figure is measured on the local cloud (``longrun local up``) and printed beside a baseline
measured in the same run on the same machine: these machines are shared and noisy, so an
absolute number alone says little, and the ratio to the floor (moto's bare Step Functions call,
a WebSocket ping, ``import boto3``) says what longrun itself adds.
"""
