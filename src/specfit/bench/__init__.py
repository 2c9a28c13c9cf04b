"""Grid searches, executors (local, Ray) and named reproduction suites."""
