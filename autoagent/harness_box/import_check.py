"""`python -m autoagent.harness_box.import_check MODULE [CLASS]`, inside a harness box:
import the harness as Harbor will; exit 0 if it defines CLASS (AutoAgent), 3 if it does not."""

import importlib
import sys

if __name__ == "__main__":
    sys.path.insert(0, "")  # the harness's directory, as Harbor imports it
    module = importlib.import_module(sys.argv[1])
    name = sys.argv[2] if len(sys.argv) > 2 else "AutoAgent"
    sys.exit(0 if getattr(module, name, None) is not None else 3)
