# expect: changes directory
# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Changes into a folder outside its directory, then writes there with a relative path.
import os

os.chdir("@OUTSIDE@")
with open("chdir-escape.txt", "w") as f:
    f.write("escaped")
