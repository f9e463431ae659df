"""The foundation every layer builds on: the run's state (the one definition of a problem,
a task and usage), the run settings (:class:`~lottery.core.context.Context`) and the tracing
helpers. It imports no node, no graph wiring, no engine and no entry point
(``tests/unit/test_layers.py``)."""
