# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Writes a history file outside its directory with readline, which opens files in C.
import readline

readline.add_history("escaped")
readline.write_history_file("@OUTSIDE@/history")
