"""pgaudit: compliance auditor and submission validator for OpenAI's Parameter Golf challenge."""

__version__ = "0.1.0"
