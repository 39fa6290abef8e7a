"""Lineage: a submission as the difference from the accepted record it descends from.

fingerprint.py normalises and hashes the code that runs, index.py builds and caches the fingerprints of
every accepted record, compare.py finds the nearest ancestors and the per-function differences, claims.py
reads the lineage a README states, render.py prints text and JSON.
"""
