"""Bridge programming: make br-int hold exactly the flows the compiler says it should.

:mod:`.transport` is the interface to the switch (atomic bundles of flow-mods, dumps of dpagent's
flows); :mod:`.ofctl` implements it with ``ovs-ofctl``, :mod:`.openflow` by speaking OpenFlow 1.5
to the bridge's management socket; :mod:`.programmer` keeps desired and installed state and sends
only the difference.
"""
