"""Diagnosis for operators: ``dpagent-ctl trace`` (a packet's verdict, stage and rules)."""
