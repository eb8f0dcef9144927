# expect: opens a network socket
# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Connects to a public address by IP (no name lookup), e.g. to send data out.
import socket

connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
connection.settimeout(2)
connection.connect(("1.1.1.1", 80))
connection.sendall(b"GET / HTTP/1.0\r\n\r\n")
