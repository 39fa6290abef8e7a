"""`pgaudit reproduce`: re-run a record folder per seed with torchrun and compare with its claims.

launcher (one seed in its own session, time limit, partial logs), procs (process-tree kill), status (live
progress), manifest (what ran where), compare (PG601-PG603 and the PG5xx validators on the new logs),
report (JSON + Markdown, per-seed results for --resume), calibrate (ms/step against 8xH100 SXM).
See docs/reproduce.md.
"""
