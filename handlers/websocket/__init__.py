"""websocket package of the longrun Lambda code."""
