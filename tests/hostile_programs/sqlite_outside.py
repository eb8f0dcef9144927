# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Opens (creates) a database outside its directory with sqlite3, which opens files in C.
import sqlite3

db = sqlite3.connect("@OUTSIDE@/lookahead.db")
db.execute("create table escaped (x)")
db.commit()
