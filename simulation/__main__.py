"""`python -m simulation`: the simulated months (simulation/simulate.py)."""
import sys

from simulation.simulate import main

sys.exit(main())
