"""Averaged-drift closures across CV grids (estimation, zarr storage, integration) — not built yet."""
