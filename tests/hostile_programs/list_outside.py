# expect: reads outside its directory
# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Lists a folder outside its directory (its file names hold a secret).
import os

raise RuntimeError(f"leaked {os.listdir('@OUTSIDE@')}")
