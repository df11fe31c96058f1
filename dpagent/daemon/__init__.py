"""The dpagent process: service life cycle, systemd readiness, the local status socket."""
