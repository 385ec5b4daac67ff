"""The stack benchmark (`bench/stack.py`) in its parts: the bench host and the bare services
(`host`), the web servers (`web`), the data stores (`stores`), rounds and their spread
(`rounds`) and the table and JSON (`report`)."""

import sys
from pathlib import Path

# The host tooling and the stack model, shared with the tests next to the test-host tooling.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "molecule" / "testhost"))
