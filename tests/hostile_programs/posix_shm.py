# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Creates a POSIX shared-memory segment and leaves it (it would outlive the run).
import os

import _posixshmem

fd = _posixshmem.shm_open("/@MARKER@", os.O_CREAT | os.O_RDWR, 0o600)
os.ftruncate(fd, 4096)
