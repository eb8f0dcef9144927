# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Creates a named pipe outside its directory.
import os

os.mkfifo("@OUTSIDE@/fifo")
