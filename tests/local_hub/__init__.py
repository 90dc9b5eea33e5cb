"""Local Hugging Face Hub-compatible server and pytest fixtures for tests that must not reach the network."""
