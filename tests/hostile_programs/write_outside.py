# expect: writes outside its directory
# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Writes a file next to the sandbox's temporary directory, into /tmp, then into the planted folder.
import os

with open(os.path.join("..", "..", "@MARKER@.txt"), "w") as f:
    f.write("escaped")
with open("/tmp/@MARKER@.txt", "w") as f:
    f.write("escaped")
with open("@OUTSIDE@/escape.txt", "w") as f:
    f.write("escaped")
