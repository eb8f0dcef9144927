# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Reads a secret outside its directory with the C library's fopen, reached through ctypes.pythonapi.
import ctypes

api = ctypes.pythonapi
api.fopen.restype = ctypes.c_void_p
api.fread.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_void_p]
stream = api.fopen(b"@OUTSIDE@/secret.txt", b"r")
if not stream:
    raise OSError("fopen failed")
buffer = ctypes.create_string_buffer(256)
api.fread(buffer, 1, 255, ctypes.c_void_p(stream))
print(buffer.value)
raise RuntimeError(f"leaked {buffer.value}")
