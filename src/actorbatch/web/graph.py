"""A run's task graph laid out for drawing: parents left of their children, one column per depth.

Pure: it places boxes and edges; the run page's template draws them as SVG, coloured by each task's state.
"""

from collections.abc import Mapping, Sequence

from actorbatch.domain.jobs import TaskSpec
from actorbatch.frozen import frozen

BOX_W, BOX_H = 168, 44  # a task's box
GAP_X, GAP_Y = 96, 22  # between columns, between boxes of one column
MARGIN = 12


@frozen
class Node:
    name: str
    status: str
    x: int
    y: int


@frozen
class Edge:
    parent: str
    child: str
    condition: str  # succeeded | failed | ended
    any_of: bool  # the child needs any one of its conditions, not all of them
    path: str  # SVG path data
    label_x: int
    label_y: int


@frozen
class Graph:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    width: int
    height: int


def depths(specs: Sequence[TaskSpec]) -> dict[str, int]:
    """Each task's column: one more than its deepest parent's (job files have no cycles)."""
    parents = {s.name: [p for p, _ in s.after] for s in specs}
    found: dict[str, int] = {}

    def depth(name: str) -> int:
        if name not in found:
            found[name] = 1 + max((depth(p) for p in parents.get(name, [])), default=-1)
        return found[name]

    for spec in specs:
        depth(spec.name)
    return found


def layout(specs: Sequence[TaskSpec], statuses: Mapping[str, str]) -> Graph:
    """Place every task and every dependency edge; statuses colour the boxes."""
    column = depths(specs)
    rows: dict[int, int] = {}
    nodes: dict[str, Node] = {}
    for spec in specs:  # job file order within a column
        col = column[spec.name]
        row = rows[col] = rows.get(col, -1) + 1
        nodes[spec.name] = Node(spec.name, statuses.get(spec.name, ""), MARGIN + col * (BOX_W + GAP_X),
                                MARGIN + row * (BOX_H + GAP_Y))
    edges = []
    for spec in specs:
        child = nodes[spec.name]
        for parent_name, condition in spec.after:
            parent = nodes[parent_name]
            x1, y1 = parent.x + BOX_W, parent.y + BOX_H // 2
            x2, y2 = child.x, child.y + BOX_H // 2
            bend = (x2 - x1) // 2
            if column[spec.name] - column[parent_name] > 1:  # past the boxes between: through the gap below
                low = max(parent.y, child.y) + BOX_H + GAP_Y // 2
                path = f"M{x1},{y1} C{x1 + GAP_X},{low} {x2 - GAP_X},{low} {x2},{y2}"
                label_y = low + 4
            else:
                path = f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"
                label_y = (y1 + y2) // 2 - 4
            edges.append(Edge(parent_name, spec.name, condition, spec.when == "any" and len(spec.after) > 1, path,
                              (x1 + x2) // 2, label_y))
    width = MARGIN * 2 + (max(column.values(), default=0) + 1) * (BOX_W + GAP_X) - GAP_X
    height = MARGIN * 2 + (max(rows.values(), default=0) + 1) * (BOX_H + GAP_Y)  # room below for long edges
    return Graph(tuple(nodes.values()), tuple(edges), width, height)
