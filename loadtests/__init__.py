"""Load tests (Locust), the verdict of a run, and the local rehearsal."""
