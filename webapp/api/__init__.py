"""The OpenAI-compatible ``/v1`` API for personal tokens."""
