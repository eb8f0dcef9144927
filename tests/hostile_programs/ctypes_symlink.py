# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Creates a symbolic link outside its directory (to /) with the C library's symlink, reached through ctypes.
import ctypes

if ctypes.pythonapi.symlink(b"/", b"@OUTSIDE@/root-link") != 0:
    raise OSError("symlink failed")
