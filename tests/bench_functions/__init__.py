"""`make bench-functions`: the served functions against the Go reference (issue 15)."""
