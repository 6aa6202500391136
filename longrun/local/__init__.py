"""The local cloud: the same template, state machines and handlers as on AWS, without Docker.

It emulates AWS and holds no workflow logic (docs/local-cloud.md). Laid out
as moto lays out its services, one package per emulated AWS service:

* ``<service>/resources.py``: the service's CloudFormation resource types and how the stack
  engine (``cloudformation/engine.py``) creates or serves them;
* ``<service>/patches.py``: where moto differs from the service, each patch a record installed
  through the one registry, ``patches.py``;
* ``aws_rules.py``: the create-time limits AWS enforces and moto does not (Lambda, Step Functions, API Gateway);
* the parts the local cloud serves itself: ``awslambda/`` (runtime, workers, event sources),
  ``apigateway/`` (REST and WebSocket fronts), ``events/targets.py``, ``stepfunctions/``
  (redrive, Map Runs, asl-validator, Step Functions Local), ``s3/presigned.py``, ``ecs/services.py``.

``cloud.py`` starts everything; ``aws_server.py`` is the AWS endpoint (moto in server mode).
"""
