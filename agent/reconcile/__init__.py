"""Level-triggered reconciliation: observe -> plan (pure, data) -> apply (effects)."""
