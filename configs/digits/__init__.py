"""The thesis's experiments at CPU scale on the embedded digits: the same grids, minutes per run."""
