"""Tools beside the core, run as `equiv sweep` and `equiv benchmark`: nothing in the core imports them."""
