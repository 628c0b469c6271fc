"""Running one suite as several parts and joining them: the unit of work, its slices, xdist's scheduler,
the shard launcher, the outputs each part keeps, and the merge.

    group.py      what a group is (the one definition: `group_of`)
    slicing.py    `--equiv-shard K/N`: deterministic, balanced slices of whole groups
    scheduler.py  `-n N`: xdist's loadgroup, dealing whole groups to workers
    launcher.py   `equiv shards -n N`: N shard processes side by side, then the merge
    outputs.py    `--equiv-outputs`: every item's outputs and bounds, for the merge
    merge.py      `equiv merge`: one matrix from many reports, frameworks paired across them
"""
