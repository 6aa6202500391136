"""steps/lifecycle package of the longrun Lambda code: the delete-project workflow's steps."""
