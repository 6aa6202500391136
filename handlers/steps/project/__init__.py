"""steps/project package of the longrun Lambda code."""
