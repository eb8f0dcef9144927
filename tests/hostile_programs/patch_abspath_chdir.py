# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Replaces posixpath.abspath (which realpath calls) so every path resolves to its own directory, then
# changes into the planted folder and writes there with a relative path.
import os
import posixpath

here = os.getcwd()
posixpath.abspath = lambda path: here
os.chdir("@OUTSIDE@")
with open("chdir-escape.txt", "w") as f:
    f.write("escaped")
