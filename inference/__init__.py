"""Generation: backend clients, sampling parameters, the token relay and the Celery tasks.

`inference.backends` and `inference.params` import nothing from Django.
"""
