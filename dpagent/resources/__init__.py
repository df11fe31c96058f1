"""neutron's resources as the agent caches them: versioned objects from ``bulk_pull`` and the
OVO pushes, a cache bounded to what the host uses, and the device details and security-group
information derived from it with the meaning the server's replies have."""
