"""neutron-server's side of dpagent's administrative state (see README.md)."""
