"""Tenant overlay networks (VXLAN, Geneve, GRE) through br-tun: see docs/overlay-design.md."""
