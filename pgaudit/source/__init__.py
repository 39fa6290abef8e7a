"""Bytes -> code: size/encoding guards, self-extracting payload unwrapping, parsing."""

from pgaudit.source.program import CodeUnit, Program, find_entries, load_program

__all__ = ["CodeUnit", "Program", "find_entries", "load_program"]
