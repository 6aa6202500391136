"""The local cloud's fixes to moto's Step Functions engine, checked on the engine's own objects.

The races they mend depend on thread timing inside moto's server (the end-to-end tests in
tests/e2e/test_local_task_token_semantics.py meet them only now and then); here each fix is driven
step by step.
"""

from __future__ import annotations

from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint

from longrun.local import moto_fixes


def test_a_heartbeat_before_the_engine_watches_the_task_is_kept() -> None:
    moto_fixes._early_heartbeats_count()
    endpoint = CallbackEndpoint(callback_id="token")
    # The message is out, the engine has not yet set up its heartbeat watch: the token is live.
    assert endpoint.notify_heartbeat() is True
    watch = endpoint.setup_heartbeat_endpoint(heartbeat_seconds=1)
    # The watch starts with that heartbeat counted: its first wait returns at once, without timing out.
    assert watch.clear_and_wait() is True


def test_a_heartbeat_after_the_watch_started_still_counts() -> None:
    moto_fixes._early_heartbeats_count()
    endpoint = CallbackEndpoint(callback_id="token-2")
    watch = endpoint.setup_heartbeat_endpoint(heartbeat_seconds=1)
    assert endpoint.notify_heartbeat() is True
    assert watch.clear_and_wait() is True
