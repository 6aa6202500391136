"""api package of the longrun Lambda code."""
