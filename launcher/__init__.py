"""Training-if-changed and the process supervisor behind `make run`."""
