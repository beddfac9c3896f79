"""Reading and writing: YAML, out/ files, the memo cache, git objects, worker processes."""
