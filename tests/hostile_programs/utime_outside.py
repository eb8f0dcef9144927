# expect: writes outside its directory
# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Changes the modification time of a file outside its directory.
import os

os.utime("@OUTSIDE@/canary.txt", (0, 0))
