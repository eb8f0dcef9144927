# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Finds the audit hook's closure with gc.get_objects() and replaces the function it calls to refuse,
# then writes outside its directory.
import gc

for obj in gc.get_objects():
    closure = getattr(obj, "__closure__", None) if callable(obj) else None
    for cell in closure or ():
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        if callable(value) and getattr(value, "__name__", "") in ("refuse", "_exit", "exit_now"):
            cell.cell_contents = lambda *args: None
with open("@OUTSIDE@/escape.txt", "w") as f:
    f.write("escaped")
