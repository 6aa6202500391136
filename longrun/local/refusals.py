"""What AWS refuses at create time, refused by the local cloud too.

moto accepts definitions and properties that AWS refuses: duplicate state names across Map
processors, an SQS event source mapping with a batch over 10 and no batching window, reserved
concurrency beyond the account's. A local cloud that accepts them would let a stack pass every
local test and then roll back on its first ``sam deploy``. Each emulated service raises
:class:`AwsRefused` where AWS would answer its create call with an error, and ``longrun local up``
stops with exit 2, naming the resource, the state (for a state machine) and the rule.
"""

from __future__ import annotations


class AwsRefused(Exception):
    """A resource that AWS would refuse to create, with the rule it breaks and where that rule is written."""

    def __init__(self, resource: str, rule: str, message: str, *, state: str | None = None, doc: str = "") -> None:
        self.resource = resource
        self.rule = rule
        self.message = message
        self.state = state
        self.doc = doc
        super().__init__(self.describe())

    def describe(self) -> str:
        where = f"{self.resource}, state {self.state}" if self.state else self.resource
        text = f"AWS would refuse {where}: {self.rule}: {self.message}"
        return f"{text} (see {self.doc})" if self.doc else text
