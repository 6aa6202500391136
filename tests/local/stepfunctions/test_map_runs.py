"""The local cloud's Map Run fails past its tolerated failure threshold as AWS's does.

(longrun/local/stepfunctions/map_runs.py)

https://docs.aws.amazon.com/step-functions/latest/dg/maprun-fail-threshold.html: with neither bound
given a Map Run tolerates no failure; with both it fails when either is exceeded.
"""

from __future__ import annotations

import pytest

from longrun.local.stepfunctions.map_runs import exceeds_threshold


@pytest.mark.parametrize(
    ("failed", "total", "count", "percentage", "declared", "fails"),
    [
        (0, 10, 0, 0.0, (False, False), False),
        (1, 10, 0, 0.0, (False, False), True),  # the default: none tolerated
        (1, 10, 0, 0.0, (True, False), True),  # ToleratedFailureCount: 0
        (2, 10, 2, 0.0, (True, False), False),  # at the count is not past it
        (3, 10, 2, 0.0, (True, False), True),
        (1, 10, 0, 10.0, (False, True), False),  # 10 % of 10 is not past 10 %
        (2, 10, 0, 10.0, (False, True), True),
        (2, 10, 5, 10.0, (True, True), True),  # either bound
        (10, 10, 0, 100.0, (False, True), False),  # 100 %: never fails
    ],
)
def test_the_threshold(failed, total, count, percentage, declared, fails):
    assert exceeds_threshold(failed, total, count, percentage, *declared) is fails
