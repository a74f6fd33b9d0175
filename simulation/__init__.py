"""The simulated year (issue 16): `python -m simulation` (`make simulate`), see simulation/simulate.py."""
