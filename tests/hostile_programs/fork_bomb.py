# expect: starts a process
# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# The classic fork bomb: every process forks forever.
import os

while True:
    os.fork()
