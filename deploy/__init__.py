"""Deployment helpers outside the server: the Docker/Railway build context and the local model config."""
