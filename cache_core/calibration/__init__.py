"""Calibrated plans: the plan search and the calibrating Block Profiler's sampling wrapper."""
