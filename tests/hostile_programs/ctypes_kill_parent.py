# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Kills its parent (the supervisor, with its backstop) with pidfd_send_signal through ctypes (not an
# audited call), then lingers: it must not outlive the run.
import ctypes
import os
import signal
import time

api = ctypes.pythonapi
fd = api.pidfd_open(os.getppid(), 0)
if fd < 0 or api.pidfd_send_signal(fd, signal.SIGKILL, None, 0) != 0:
    raise OSError("pidfd failed")
time.sleep(600)
