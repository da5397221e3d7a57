"""muxlang: a declarative workflow language for LLM work.

The pipeline runs in stages, each in its own package, dependencies pointing one
way: ``muxlang.toml`` and ``muxlang.template`` (syntax) → ``muxlang.compiler``
(checks and the plan) → ``muxlang.runtime`` (execution). See docs/architecture.md.
"""

__version__ = "0.2.0"
