"""Performance benchmark (issue 9): python -m bench --help."""
