"""AutoAgent: improve an agent harness on your own tasks."""
