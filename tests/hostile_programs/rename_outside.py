# expect: writes outside its directory
# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Renames a file outside its directory.
import os

os.rename("@OUTSIDE@/canary.txt", "@OUTSIDE@/renamed.txt")
