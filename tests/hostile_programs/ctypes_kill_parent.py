# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Kills its parent with pidfd_send_signal through ctypes (not an audited call), and fails unless the
# parent is gone.
import ctypes
import os
import select
import signal

api = ctypes.pythonapi
fd = api.pidfd_open(os.getppid(), 0)
if fd < 0 or api.pidfd_send_signal(fd, signal.SIGKILL, None, 0) != 0:
    raise OSError("pidfd failed")
if not select.select([fd], [], [], 1.0)[0]:  # a pidfd turns readable when its process has exited
    raise RuntimeError("the parent survived")
