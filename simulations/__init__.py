"""Simulation harness and load tests for actorbatch clusters."""
