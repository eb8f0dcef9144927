# expect: writes outside its directory
# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Writes a file next to the sandbox's temporary directory, then into /tmp.
import os

with open(os.path.join("..", "..", "lookahead-hostile-escape.txt"), "w") as f:
    f.write("escaped")
with open("/tmp/lookahead-hostile-escape.txt", "w") as f:
    f.write("escaped")
