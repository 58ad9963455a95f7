"""AutoAgent: improve an agent harness on your own tasks, unattended, with evidence."""

import os

# LiteLLM (imported by Harbor and by us) fetches a price list from the internet at
# import unless told to use its bundled copy.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
