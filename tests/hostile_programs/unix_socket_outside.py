# expect: uses the network (connect)
# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Connects to a Unix socket outside its directory (a local service) and sends to it.
import socket

connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
connection.connect("@OUTSIDE@/listen.sock")
connection.sendall(b"escaped")
