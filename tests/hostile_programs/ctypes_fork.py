# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Forks through the C library's _Fork (no audit event); the child writes outside with fopen, then lingers.
# It fails when the child could not write.
import ctypes
import os
import time

api = ctypes.pythonapi
api.fopen.restype = ctypes.c_void_p
api.fputs.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
api.fclose.argtypes = [ctypes.c_void_p]
pid = api._Fork()
if pid < 0:
    raise OSError("_Fork failed")
if pid == 0:
    stream = api.fopen(b"@OUTSIDE@/forked.txt", b"w")
    if not stream:
        api._exit(1)
    api.fputs(b"escaped", stream)
    api.fclose(stream)
    time.sleep(120)
    api._exit(0)
time.sleep(0.5)
if os.waitpid(pid, os.WNOHANG)[0]:  # the child has ended: it could not write
    raise RuntimeError("the child could not write outside")
