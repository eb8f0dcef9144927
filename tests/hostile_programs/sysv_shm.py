# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Creates a System V shared-memory segment through ctypes and leaves it (it would outlive the run);
# then fails (what it is after is the segment left behind, not the score).
import ctypes
import zlib

key = zlib.crc32(b"@MARKER@") & 0x7FFFFFFF
if ctypes.pythonapi.shmget(key, 4096, 0o1000 | 0o600) < 0:  # IPC_CREAT
    raise OSError(ctypes.get_errno(), "shmget failed")
raise RuntimeError("left a segment")
