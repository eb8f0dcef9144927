# expect: signals another process
# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Sends SIGKILL to every process it may signal (the supervisor with its backstop among them), then
# lingers: it must not outlive the run.
import os
import signal
import time

os.kill(-1, signal.SIGKILL)
time.sleep(600)
