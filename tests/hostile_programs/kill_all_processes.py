# expect: signals another process
# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Sends SIGKILL to every process it may signal.
import os
import signal

os.kill(-1, signal.SIGKILL)
