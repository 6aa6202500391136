"""Identifier rules shared with the Lambda package, restated for the tools (handlers/ stands alone)."""

from __future__ import annotations

import re

USER_ID = re.compile(r"^[A-Za-z0-9._@+-]{1,128}$")
