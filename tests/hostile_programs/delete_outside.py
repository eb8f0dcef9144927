# expect: writes outside its directory
# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Deletes a file outside its directory.
import os

os.remove("@OUTSIDE@/canary.txt")
