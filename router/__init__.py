"""The router: TF Serving's REST front over the hot and cold pools, A/B splits, counts."""
