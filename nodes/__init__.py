"""The steps of Algorithm 1, one module each: planner, retrieve, tool, solve, merge.

``schedule`` is the bookkeeping step between them: it reads the problem tree,
applies the rules (depth limit, dependencies, budget) and fans out the next
steps in parallel.
"""
