# expect: writes outside its directory
# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Makes a file outside its directory writable by everyone.
import os

os.chmod("@OUTSIDE@/canary.txt", 0o777)
