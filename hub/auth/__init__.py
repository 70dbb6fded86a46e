"""API keys, roles and the route class that authenticates every request before anything else."""
