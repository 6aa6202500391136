"""steps/notify package of the longrun Lambda code."""
