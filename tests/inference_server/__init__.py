"""A scripted inference server (TGI and OpenAI protocols) that tests drive over HTTP.

Run it with ``python -m tests.inference_server --port 8089``, or start it from a test
with :class:`tests.inference_server.harness.ScriptedServer`.  See ``scripts.py`` for the
script format.
"""

from .harness import ScriptedServer
from .scripts import directive

__all__ = ["ScriptedServer", "directive"]
