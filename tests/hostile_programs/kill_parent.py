# expect: signals another process
# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Kills the process that started it, then its whole process group.
import os
import signal

os.kill(os.getppid(), signal.SIGKILL)
os.kill(0, signal.SIGKILL)
