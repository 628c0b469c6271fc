"""pytest-xdist's loadgroup scheduling, made to keep equiv's groups (`group.group_of`) together and to
scale.

Three things differ from xdist 3.8's own, and why:
- xdist learns an item's group from an `@group` suffix that workers append to node ids; since pytest
  9.2 node ids are structured and the suffix no longer sticks (pytest-dev/pytest-xdist#1386, open), so
  groups were silently split. Here the group is read off equiv's own item ids.
- After every item xdist recounts the pending items of every group a worker was ever given, quadratic
  in the items and paid by the controlling process. Here a group is forgotten once all its items
  have reported.
- xdist finds each item it sends in the worker's collection with `list.index`, quadratic again; here
  a dict finds it.
What is sent to which worker, and when, is otherwise xdist's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xdist.scheduler import LoadGroupScheduling

from equiv.distribute.group import group_of


class GroupScheduling(LoadGroupScheduling):  # type: ignore[misc]  # xdist is untyped
    def __init__(self, config: Any, log: Any = None) -> None:
        super().__init__(config, log)
        root = Path(config.rootpath)
        # Node ids are relative to the rootdir; only items of case files are read as equiv's.
        self._case_dirs = tuple(
            f"{Path(p).resolve().relative_to(root).as_posix()}/" if Path(p).resolve().is_relative_to(root)
            else "" for p in config.getini("equiv_cases"))
        self._indexes: dict[Any, dict[str, int]] = {}  # per worker: node id -> index in its collection

    def _split_scope(self, nodeid: str) -> str:
        ours = any(nodeid.startswith(d) for d in self._case_dirs if d)
        group = group_of(nodeid) if ours else None
        return group if group is not None else str(super()._split_scope(nodeid))

    def mark_test_complete(self, node: Any, item_index: int, duration: float = 0) -> None:
        scope = self._split_scope(self.registered_collections[node][item_index])
        super().mark_test_complete(node, item_index, duration)
        work = self.assigned_work.get(node, {})
        if scope in work and all(work[scope].values()):
            del work[scope]  # done: it counts no pending item, and xdist never looks at it again

    def _assign_work_unit(self, node: Any) -> None:
        """xdist's own, with the items' indexes looked up in a dict instead of `list.index`."""
        scope, work_unit = self.workqueue.popitem(last=False)
        self.assigned_work.setdefault(node, {})[scope] = work_unit
        index = self._indexes.get(node)
        if index is None:
            collection = self.registered_collections[node]
            index = self._indexes[node] = {nodeid: i for i, nodeid in enumerate(collection)}
        node.send_runtest_some([index[nodeid] for nodeid, completed in work_unit.items() if not completed])
