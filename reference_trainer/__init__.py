"""The reference baseline trainer of Parameter Golf, re-implemented: see docs/reference_trainer.md.

Importing the package needs no torch; `reference_trainer.tinydata` and `reference_trainer.corpus` run
without it. Everything else requires the `trainer` extra.
"""
