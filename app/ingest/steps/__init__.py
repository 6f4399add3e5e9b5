"""One module per pipeline step; each returns its result or a `Rejection`, and never raises."""
