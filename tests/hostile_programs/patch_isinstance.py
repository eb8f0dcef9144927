# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Replaces builtins.isinstance (which the hook's path checks use) so that every path looks like a
# file descriptor, then writes outside its directory.
import builtins

real = builtins.isinstance
builtins.isinstance = lambda obj, kind: True
try:
    with open("@OUTSIDE@/escape.txt", "w") as f:
        f.write("escaped")
finally:
    builtins.isinstance = real
