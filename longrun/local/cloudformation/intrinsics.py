"""Evaluating CloudFormation intrinsic functions against a stack's known names and attributes.

Only what longrun's template uses is supported; anything else raises ``Unsupported`` so that the
local cloud refuses loudly instead of guessing.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

_SUB_VARIABLE = re.compile(r"\$\{([^}]+)\}")


class Unsupported(Exception):
    """The template uses something the local cloud cannot evaluate."""


class Resolver:
    def __init__(
        self,
        *,
        parameters: dict[str, Any],
        conditions: dict[str, Any],
        ref: Callable[[str], Any],
        get_att: Callable[[str, str], Any],
    ) -> None:
        self._parameters = parameters
        self._condition_defs = conditions
        self._conditions: dict[str, bool] = {}
        self._ref = ref
        self._get_att = get_att

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            if name not in self._condition_defs:
                raise Unsupported(f"unknown condition {name}")
            self._conditions[name] = bool(self.resolve(self._condition_defs[name]))
        return self._conditions[name]

    def ref(self, name: str) -> Any:
        if name in self._parameters:
            return self._parameters[name]
        return self._ref(name)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in (self.resolve(v) for v in value) if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return _NO_VALUE if arg == "AWS::NoValue" else self.ref(arg)
            if key.startswith("Fn::") or key == "Condition":
                return self._function(key, arg)
        out = {}
        for k, v in value.items():
            resolved = self.resolve(v)
            if resolved is not _NO_VALUE:
                out[k] = resolved
        return out

    def _function(self, key: str, arg: Any) -> Any:
        if key == "Fn::GetAtt":
            logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            return self._get_att(logical, attribute)
        if key == "Fn::Sub":
            return self._sub(arg)
        if key == "Fn::Join":
            separator, items = arg
            return separator.join(str(i) for i in self.resolve(items))
        if key == "Fn::Select":
            index, items = self.resolve(arg)
            return items[int(index)]
        if key == "Fn::Split":
            separator, text = self.resolve(arg)
            return text.split(separator)
        if key == "Fn::GetAZs":
            # The region's zones ("" is the stack's region). No zone is a place locally; three
            # names shaped like AWS's let a template pick two different ones, as it must on AWS.
            region = self.resolve(arg) or self.ref("AWS::Region")
            return [f"{region}{letter}" for letter in "abc"]
        if key == "Fn::If":
            name, when_true, when_false = arg
            return self.resolve(when_true if self.condition(name) else when_false)
        if key == "Fn::Equals":
            a, b = self.resolve(arg)
            return str(a) == str(b)
        if key == "Fn::Not":
            return not self.resolve(arg[0])
        if key == "Fn::And":
            return all(self.resolve(a) for a in arg)
        if key == "Fn::Or":
            return any(self.resolve(a) for a in arg)
        if key == "Condition":
            return self.condition(arg)
        if key == "Fn::Base64":  # a launch template's UserData
            return base64.b64encode(str(self.resolve(arg)).encode()).decode()
        raise Unsupported(f"the local cloud does not evaluate {key}")

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical, attribute = name.split(".", 1)
                return str(self._get_att(logical, attribute))
            value = self.ref(name)
            return ",".join(value) if isinstance(value, list) else str(value)

        return _SUB_VARIABLE.sub(replace, text)


class _NoValueType:
    def __repr__(self) -> str:
        return "AWS::NoValue"


_NO_VALUE = _NoValueType()
