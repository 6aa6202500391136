"""triggers package of the longrun Lambda code."""
