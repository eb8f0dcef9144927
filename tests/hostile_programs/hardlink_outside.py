# expect: writes outside its directory
# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Hard-links a file outside its directory into it, then appends through the link.
import os

os.link("@OUTSIDE@/canary.txt", "here.txt")
with open("here.txt", "a") as f:
    f.write("escaped")
