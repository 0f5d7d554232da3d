"""Thesis experiments: grids of training runs (grid), running them (sweep), reading their
results (results, thesis) and writing the thesis's tables and figures (report)."""
