"""Review commands: check, diff (and its reports), graph."""
