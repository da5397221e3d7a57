"""The compiled plan: everything the runtime needs, and nothing it must not see.

The compiler lowers a checked :class:`~muxlang.workflow.Workflow` plus its
resolved configuration into a :class:`Plan`: a networkx ``DiGraph`` whose nodes
are step names (node attribute ``"step"`` holds the :class:`CompiledStep`) and
whose edges run from a dependency to its dependent. The runtime never sees TOML
nodes or Lark trees.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from typing import TYPE_CHECKING

from muxlang._frozen import frozen
from muxlang.config.resolved import ResolvedConfig as ResolvedConfig
from muxlang.workflow import AnyStep, Workflow

if TYPE_CHECKING:  # the compiler imports networkx only when it builds a graph
    import networkx as nx


@frozen(slots=True)
class CompiledStep:
    step: AnyStep
    #: every step this one waits for (depends_on plus references), sorted
    dependencies: tuple[str, ...]
    #: the step's ``if`` calls success()/failure()/always(): the implicit
    #: "all dependencies succeeded" check is replaced by the expression
    status_functions: frozenset[str] = frozenset()
    #: the step's ``if`` mentions ``item``: it is evaluated per for_each item
    if_per_item: bool = False

    @property
    def name(self) -> str:
        return self.step.name


@frozen(slots=True)
class Plan:
    workflow: Workflow
    config: ResolvedConfig
    graph: nx.DiGraph  # nodes: step names, attr "step" -> CompiledStep; edges dep -> dependent
    #: a topological order that keeps file order where the graph allows
    order: tuple[str, ...]
    #: the plan of the workflow each ``uses`` step calls, by step name
    calls: Mapping[str, Plan] = field(default_factory=dict)

    def step(self, name: str) -> CompiledStep:
        compiled: CompiledStep = self.graph.nodes[name]["step"]
        return compiled

    def steps(self) -> tuple[CompiledStep, ...]:
        return tuple(self.step(name) for name in self.order)

    @property
    def max_concurrent(self) -> int:
        return self.workflow.max_concurrent or self.config.defaults.max_concurrent

    def final_steps(self) -> tuple[str, ...]:
        """Steps nothing depends on, in plan order (the last is the run's output)."""
        return tuple(n for n in self.order if self.graph.out_degree(n) == 0)
