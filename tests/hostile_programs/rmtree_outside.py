# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Deletes a whole folder outside its directory.
import shutil

shutil.rmtree("@OUTSIDE@/keep")
