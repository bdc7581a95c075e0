"""The node's store: received files and SQLite rows of jobs and deliveries, no policy."""
