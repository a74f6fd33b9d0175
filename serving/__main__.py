"""`python -m serving`: the tensorflow_model_server-compatible entry point."""
import sys

from serving.main import main

sys.exit(main())
