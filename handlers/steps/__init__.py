"""steps package of the longrun Lambda code."""
