"""Registers and conntrack marks used by the br-int pipeline, declared once.

Feature modules refer to these names, never to a bare ``reg5`` or ``NXM_NX_REG6[0..15]``,
so that moving a field is a one-line change and the meaning of every bit is written here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Register:
    """A 32-bit OVS register and the way flows spell it."""

    index: int
    meaning: str

    @property
    def match_name(self) -> str:
        """Name in a match, e.g. ``reg5``."""
        return f"reg{self.index}"

    @property
    def nxm(self) -> str:
        """Whole-register NXM reference, e.g. ``NXM_NX_REG5[]``."""
        return f"NXM_NX_REG{self.index}[]"

    def nxm_bits(self, low: int, high: int) -> str:
        """A bit slice, e.g. ``NXM_NX_REG6[0..15]``."""
        return f"NXM_NX_REG{self.index}[{low}..{high}]"


PORT = Register(5, "ofport of the VM port whose filter the packet is in (source on egress, "
                   "destination on ingress)")
NETWORK = Register(6, "local VLAN of the packet's network; also its conntrack zone")
FLAGS = Register(7, "facts about the port in PORT, see the FLAG_* bits")

FLAG_STATEFUL = 0x1
"""Set in FLAGS when the port's groups are stateful: its IP traffic goes through conntrack."""

ZONE = NETWORK.nxm_bits(0, 15)
"""Conntrack zone of a packet: the network's local VLAN (1-4094) fits the 16-bit zone."""

CT_MARK_BLOCKED = 0x1
"""ct_mark bit set on a connection that no rule allows any more (a rule was removed or a
remote-group member left). Its replies are dropped; the bit is cleared if a rule allows the
connection again."""
CT_MARK_BLOCKED_NXM = "NXM_NX_CT_MARK[0]"
