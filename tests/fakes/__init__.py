"""In-process fakes of servers the tests talk to."""
