# expect: opens a network socket
# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Sends a UDP datagram to a public DNS server.
import socket

connection = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
connection.sendto(b"escaped", ("8.8.8.8", 53))
