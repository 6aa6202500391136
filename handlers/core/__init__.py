"""What every longrun Lambda shares: settings, AWS clients, the job store, the event publisher.

The Lambda package (``CodeUri: handlers/``) stands alone: nothing here imports ``longrun``.
"""
