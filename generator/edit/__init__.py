"""Round-trip edits of the sources (`set`, `promote`): change the deciding line, keep every other byte."""
