# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Loads the C library by its bare name (once resolved as if inside the work dir) and writes outside with fopen.
import ctypes

libc = ctypes.CDLL("libc.so.6")
libc.fopen.restype = ctypes.c_void_p
libc.fputs.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
stream = libc.fopen(b"@OUTSIDE@/escape.txt", b"w")
if not stream:
    raise OSError("fopen failed")
libc.fputs(b"escaped", stream)
libc.fclose(stream)
