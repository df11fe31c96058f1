"""The long-running agent: OVSDB port events and control-plane data in, flows on br-int out."""
