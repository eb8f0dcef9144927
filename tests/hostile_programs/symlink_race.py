# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Races the hook's path check: one thread swaps a file in its directory for a symbolic link to a file
# outside (rename and symlink through ctypes), the other keeps appending to it.
import ctypes
import threading

api = ctypes.pythonapi
stop = False


def swap():
    while not stop:
        open("plain", "w").close()
        api.rename(b"plain", b"target")
        api.symlink(b"@OUTSIDE@/canary.txt", b"link")
        api.rename(b"link", b"target")


open("target", "w").close()
threading.Thread(target=swap, daemon=True).start()
for _ in range(3000):
    try:
        with open("target", "a") as f:
            f.write("escaped")
    except OSError:
        pass
stop = True
with open("@OUTSIDE@/canary.txt") as f:
    if "escaped" not in f.read():
        raise RuntimeError("the race was not won")
