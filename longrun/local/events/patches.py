"""Where moto's EventBridge differs from EventBridge: declared for :mod:`longrun.local.patches`."""

from __future__ import annotations

from longrun.local.events import targets
from longrun.local.patches import Patch

PATCHES = (
    Patch(
        service="events",
        name="rules-deliver-to-functions-and-state-machines",
        behaviour=(
            "A rule delivers a matching event to its Lambda function and state machine targets, asynchronously "
            "(PutEvents never waits for a target), after the target's Input, InputPath or InputTransformer, "
            "with retries and the target's dead-letter queue; rate() and cron() rules fire; a DISABLED rule "
            "and a schedule rule get no PutEvents deliveries."
        ),
        doc="https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-targets.html",
        gap=(
            "moto fails PutEvents with a 500 on a rule whose target is a function or a state machine, never "
            "fires a schedule, and delivers to disabled rules and (its pattern empty) to every schedule rule "
            "of the bus."
        ),
        replaces=("moto.events.models:Rule.send_to_targets",),
        apply=targets.apply,
        moto_issue="https://github.com/getmoto/moto/pull/5169",  # moto delivers to a subset of targets only
    ),
)
