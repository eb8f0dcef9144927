# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Double-forks through the C library's _Fork into a new session, so that a grandchild outlives the run;
# then fails (what it is after is the process left behind, not the score).
import ctypes
import os
import time

api = ctypes.pythonapi
pid = api._Fork()
if pid < 0:
    raise OSError("_Fork failed")
if pid == 0:
    os.setsid()
    if api._Fork() == 0:
        time.sleep(300)
    api._exit(0)
time.sleep(0.5)
raise RuntimeError("planted a daemon")
