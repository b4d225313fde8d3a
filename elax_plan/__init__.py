"""elax-plan: safe, reviewable, resumable backfills into elacsym.

The package is a pure core (``spec``, planner, renderers) wrapped in an I/O shell
(``live``, ``state``, ``apply``) and a local elacsym ``emulator``. The CLI in
``elax_plan.cli`` is the only place that prints.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
