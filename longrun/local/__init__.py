"""The local cloud: the same template, state machines and handlers as on AWS, without Docker.

It emulates AWS and holds no workflow logic (see ARCHITECTURE.md, "The local cloud").
"""
