"""Benchmarks of jaxgen: compile time and steady-state train-step speed, as JSON."""
