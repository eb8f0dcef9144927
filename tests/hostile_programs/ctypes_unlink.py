# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Deletes a file outside its directory with the C library's unlink, reached through ctypes.
import ctypes

if ctypes.CDLL("libc.so.6").unlink(b"@OUTSIDE@/canary.txt") != 0:
    if ctypes.pythonapi.unlink(b"@OUTSIDE@/canary.txt") != 0:
        raise OSError("unlink failed")
